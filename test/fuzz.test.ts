/**
 * No input kills the daemon, no client bloats it. The corpus of hostile inputs
 * (test/fuzz/corpus.ts) is replayed over the socket, through `agentd stdio` and through
 * `agentd stdio --remote` (to the daemon's WebSocket listener over wss://), each
 * case checked for its exact error code (or for silence); every field of every method
 * gets wrong types; and the whole lot, with the burst, slow-reader and big-create
 * clients, runs against a daemon inside the strongest memory limit the machine allows.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { ClientRequests, ErrorCode, type ClientMethod } from '../protocol/index.js';
import { bigCreates, bigSession, burst, fuzz, slowSubscribers } from './support/abuse.js';
import { workspace as makeWorkspace } from './support/agent.js';
import { RawConnection, startDaemon, type TestDaemon } from './support/daemon.js';
import { expectedLimitKind, strongestMemoryLimit } from './support/memory-limit.js';
import { createToken, startListeningDaemon } from './support/remote.js';
import { corpus } from './fuzz/corpus.js';
import { initialize, openConnections, replay } from './fuzz/replay.js';

type Message = Record<string, unknown>;
const errorOf = (m: Message) => m.error as { code: number } | undefined;

function alive(daemon: TestDaemon): boolean {
  return daemon.proc.exitCode === null && daemon.proc.signalCode === null;
}

/** `agentd stdio` autostarts a daemon when none answers: after a crash, stop any it started. */
function stopStrayDaemon(daemon: TestDaemon): void {
  const pid = Number(readFileSync(daemon.layout.pidFile, { encoding: 'utf8', flag: 'a+' }).trim());
  if (pid > 0 && pid !== daemon.proc.pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Values of every JSON type, plus a deep one and a long one. */
const WRONG: unknown[] = [null, 0, -1, 1.5, '', 'x', true, [], {}, JSON.parse('['.repeat(1000) + ']'.repeat(1000)), 'y'.repeat(300_000)];

/** Valid params per method, from which one field at a time is made wrong. daemon/stop and shutdown are in the corpus. */
function baseParams(sessionId: string, workspace: string): Partial<Record<ClientMethod, Message>> {
  return {
    'session/create': { workspace, title: 't', system: 's', tools: ['bash'], credentials: [] },
    'session/list': { limit: 5, status: 'idle' },
    'session/get': { sessionId },
    'session/prompt': { sessionId, content: 'hi' },
    'session/interrupt': { sessionId },
    'session/fork': { sessionId, at: 1 },
    'session/attach': { sessionId, role: 'controller' },
    'session/events': { sessionId, from: 0, limit: 5 },
    'session/subscribe': { sessionId, from: 0 },
    'session/unsubscribe': { subscriptionId: 'sub_none' },
    'vault/set': { name: 'FUZZ', value: 'fuzz-value-1' },
    'vault/list': {},
    'vault/delete': { name: 'NOPE' },
    'daemon/status': {},
  };
}

function shapeOf(schema: z.ZodType): Record<string, unknown> {
  let s: unknown = schema;
  while (s && typeof (s as { unwrap?: unknown }).unwrap === 'function' && !(s instanceof z.ZodObject)) s = (s as { unwrap(): unknown }).unwrap();
  return s instanceof z.ZodObject ? (s.shape as Record<string, unknown>) : {};
}

// `stdio --remote`: the bridge to a daemon's WebSocket listener (wss://, a controller token), which cuts frames as the socket does.
for (const transport of ['socket', 'stdio', 'stdio --remote'] as const) {
  describe(`hostile input over ${transport}`, () => {
    let daemon: TestDaemon;
    let remote: { args: string[]; env: Record<string, string> } | undefined;
    const open = () =>
      transport === 'socket' ? RawConnection.open(daemon.layout.socket) : Promise.resolve(RawConnection.stdio(daemon.layout, remote ?? {}));
    before(async () => {
      if (transport !== 'stdio --remote') {
        daemon = await startDaemon();
        return;
      }
      const listening = await startListeningDaemon();
      daemon = listening;
      const token = await createToken(daemon.layout, ['--controller']);
      remote = { args: ['--remote', listening.url], env: { AGENTD_TOKEN: token, AGENTD_REMOTE_CA: listening.cert.certFile } };
    });
    after(async () => {
      stopStrayDaemon(daemon);
      await daemon.dispose();
    });

    it('answers every corpus case with its exact code, or not at all, and stays up', async () => {
      const conns = await openConnections(open);
      const wrong: string[] = [];
      for (const [n, c] of corpus.entries()) {
        const outcome = await replay(c, conns, n);
        if (!isDeepStrictEqual(outcome, c.expect)) wrong.push(`${c.name}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(outcome)}`);
        assert.ok(alive(daemon), `the daemon died on "${c.name}": ${daemon.stderr().slice(-3000)}`);
      }
      conns.fresh.close();
      conns.ready.close();
      assert.deepEqual(wrong, []);
    });

    it("answers a wrong type in any field of any method as that method's schema says, never with an internal error", async () => {
      const conn = await open();
      await initialize(conn);
      const workspace = makeWorkspace();
      const created = await conn.request(1, 'session/create', { workspace });
      const sessionId = (created.result as { sessionId: string }).sessionId;
      const wrong: string[] = [];
      let id = 100;
      for (const [method, base] of Object.entries(baseParams(sessionId, workspace)) as Array<[ClientMethod, Message]>) {
        const schema = ClientRequests[method].params as z.ZodType;
        const variants: unknown[] = [...WRONG.filter((v) => typeof v === 'object'), ...Object.keys(shapeOf(schema)).flatMap((field) => WRONG.map((v) => ({ ...base, [field]: v })))];
        for (const params of variants) {
          const reply = await conn.request(++id, method, params);
          const code = errorOf(reply)?.code;
          const expected = params === null ? ErrorCode.InvalidRequest : schema.safeParse(params).success ? undefined : ErrorCode.InvalidParams;
          const label = `${method} ${JSON.stringify(params).slice(0, 120)}`;
          if (expected !== undefined && code !== expected) wrong.push(`${label}: expected ${expected}, got ${JSON.stringify(reply).slice(0, 200)}`);
          if (expected === undefined && (code === ErrorCode.InternalError || code === ErrorCode.InvalidParams)) wrong.push(`${label}: valid params answered ${JSON.stringify(reply).slice(0, 200)}`);
          assert.ok(alive(daemon), `the daemon died on ${label}`);
        }
      }
      conn.close();
      assert.deepEqual(wrong, []);
    });
  });
}

describe('hostile input inside a memory limit', () => {
  const LIMIT = 320 * 1024 * 1024;

  it('survives the corpus and the burst, slow-reader and big-create clients without reaching the limit', async () => {
    const limit = strongestMemoryLimit(LIMIT);
    const workspace = makeWorkspace();
    let daemon: TestDaemon | undefined;
    try {
      assert.equal(limit.kind, expectedLimitKind(), 'the strongest limit this machine allows');
      daemon = await startDaemon({ wrap: limit.wrap });
      assert.ok(limit.holds(daemon.proc.pid!), `the daemon runs under the ${limit.kind} limit`);
      const { layout } = daemon;
      // 16 MiB of events: a whole read of it is far more than a page.
      const sessionId = await bigSession(layout, workspace, 16 * 1024 * 1024);

      const outcomes = await fuzz(layout);
      assert.equal(outcomes.length, corpus.length);

      const reads = await burst(layout, sessionId, 200);
      const subscribers = await slowSubscribers(layout, sessionId, 60);
      // While both hang, the daemon serves everyone else.
      const other = await RawConnection.open(layout.socket);
      await initialize(other);
      assert.equal((await other.request(1, 'daemon/status')).error, undefined);
      other.close();
      const readAnswers = await reads.finish();
      assert.ok(readAnswers.every((m) => m.result !== undefined || errorOf(m)?.code === ErrorCode.LimitExceeded), JSON.stringify(readAnswers.filter((m) => m.error)).slice(0, 500));
      assert.ok(readAnswers.some((m) => m.result !== undefined));
      const subscribed = await subscribers.finish();
      assert.ok(subscribed.every((m) => m.result !== undefined), JSON.stringify(subscribed.filter((m) => m.error)).slice(0, 500));

      const creates = await (await bigCreates(layout, workspace, 60, 15_000_000)).finish();
      const list = creates.pop()!;
      assert.ok(creates.every((m) => errorOf(m)?.code === ErrorCode.InvalidParams), 'a 15 MB system prompt is refused');
      assert.equal(list.error, undefined);

      assert.ok(alive(daemon), `the daemon died: ${daemon.stderr().slice(-2000)}`);
      assert.equal(limit.oomKills(), 0, 'nothing was OOM-killed');
      const peak = limit.peakBytes();
      if (peak !== undefined) assert.ok(peak < LIMIT, `peak ${peak} under the limit`);
    } finally {
      await daemon?.dispose();
      limit.dispose();
    }
  });
});
