/**
 * Crash durability: a writer process appending from many sessions is SIGKILLed at random
 * moments, again and again on the same store (a LevelDB directory, a PostgreSQL database). Every append it acknowledged must be in
 * the log afterwards exactly once, byte for byte, with dense seqs per session. The writer
 * also keeps checkpoints as it goes: whichever one a kill left is whole and not past the head.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoredEvent } from '../daemon/log/index.js';
import { isWholeCheckpoint, sha256OfData } from './support/log-crash-writer.js';
import type { AckLine } from './support/log-crash-writer.js';
import { openLogAt, readAll } from './support/log.js';
import { freshDatabase } from './support/postgres.js';

const WRITER = fileURLToPath(new URL('./support/log-crash-writer.js', import.meta.url));
const RUNS = 24;
const SESSIONS = 16;

/** Runs one writer, kills it a random while after its first ack, returns the acks it printed. */
async function runAndKill(dir: string, run: number): Promise<AckLine[]> {
  const child = spawn(process.execPath, [WRITER, dir, 'crash', String(SESSIONS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acks: AckLine[] = [];
  let partial = '';
  let killTimer: NodeJS.Timeout | undefined;
  let failure: string | undefined;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    // A line cut by the kill has no newline yet: only complete lines count.
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const parsed = JSON.parse(line) as AckLine & { ready?: boolean; error?: unknown };
      if (parsed.error) failure = JSON.stringify(parsed.error);
      else if (!parsed.ready) acks.push(parsed);
      if (!parsed.ready && killTimer === undefined) {
        // Spread kills over the append loop; a few land right at the start of a run.
        const delay = run % 6 === 0 ? 0 : Math.floor(Math.random() * 250);
        killTimer = setTimeout(() => child.kill('SIGKILL'), delay);
      }
    }
  });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(killTimer);
  assert.equal(failure, undefined, `writer run ${run} failed: ${failure}`);
  assert.equal(exit.signal, 'SIGKILL', `writer run ${run} exited with ${exit.code}`);
  return acks;
}

/** The crash test against one store; `location` is a directory or a postgres:// URL. */
async function crashAndCheck(location: string, t: TestContext): Promise<void> {
  const acked: AckLine[] = [];
  for (let run = 0; run < RUNS; run++) acked.push(...(await runAndKill(location, run)));
  assert.ok(acked.length > RUNS * SESSIONS, `only ${acked.length} acks in ${RUNS} runs`);
  t.diagnostic(`${acked.length} acknowledged events over ${RUNS} killed writers`);

  const log = await openLogAt(location);
  try {
    const stored = new Map<string, StoredEvent[]>();
    const uids = new Set<string>();
    let checkpoints = 0;
    for (let i = 0; i < SESSIONS; i++) {
      const id = `s_crash_${String(i).padStart(2, '0')}`;
      const events = await readAll(log, id);
      const checkpoint = await log.getCheckpoint(id);
      if (checkpoint) {
        checkpoints++;
        assert.ok(checkpoint.seq <= events.length, `${id}: checkpoint at ${checkpoint.seq} past the head ${events.length}`);
        assert.ok(isWholeCheckpoint(checkpoint.seq, checkpoint.state), `${id}: checkpoint at ${checkpoint.seq} is torn or not the one written for its seq`);
      }
      assert.deepEqual(events.map((e) => e.seq), Array.from({ length: events.length }, (_, k) => k), `${id}: seqs not dense`);
      assert.equal(await log.head(id), events.length);
      for (const event of events) {
        const uid = String(event.data['uid']);
        assert.ok(!uids.has(uid), `event ${uid} stored twice`);
        uids.add(uid);
      }
      stored.set(id, events);
    }
    t.diagnostic(`${uids.size} events stored (acknowledged or written just before a kill)`);
    assert.ok(checkpoints > 0, 'the writer kept checkpoints');
    for (const ack of acked) {
      const event = stored.get(ack.sessionId)?.[ack.seq];
      assert.ok(event, `acknowledged ${ack.sessionId}#${ack.seq} is missing`);
      assert.equal(event.data['uid'], ack.uid, `${ack.sessionId}#${ack.seq} holds another event`);
      assert.equal(sha256OfData(event.data), ack.sha256, `${ack.sessionId}#${ack.seq} changed`);
    }
  } finally {
    await log.close();
  }
}

describe('session log under SIGKILL', () => {
  it(`LevelDB keeps every acknowledged append across ${RUNS} kills`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'agentd-log-crash-'));
    try {
      await crashAndCheck(dir, t);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`PostgreSQL keeps every acknowledged append across ${RUNS} kills`, async (t) => {
    await crashAndCheck(await freshDatabase(), t);
  });
});
