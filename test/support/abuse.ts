/**
 * Clients that misbehave on purpose, for the memory-limit test (test/fuzz.test.ts) and
 * the RSS bench (bench/abuse.ts): a burst of pipelined reads never read back, many
 * subscriptions from 0 never read, huge session/create requests then a list, and the
 * fuzz corpus. Each starts the abuse and returns a `finish` that reads everything the
 * daemon answered, checks every request got an answer, and hangs up.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { DataLayout } from '../../protocol/index.js';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { corpus } from '../fuzz/corpus.js';
import { openConnections, replay } from '../fuzz/replay.js';
import { RawConnection } from './daemon.js';

type Message = Record<string, unknown>;

export interface Abuse {
  /** Resumes reading, waits for an answer to every request sent, closes; returns the answers. */
  finish(): Promise<Message[]>;
}

const INIT = { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'abuse' } };

async function initialized(layout: DataLayout): Promise<RawConnection> {
  const conn = await RawConnection.open(layout.socket);
  const reply = await conn.request(0, 'initialize', INIT);
  if (reply.error) throw new Error(`initialize failed: ${JSON.stringify(reply.error)}`);
  return conn;
}

/** Sends `count` requests without reading a byte of the answers. */
async function pipelined(layout: DataLayout, count: number, method: string, params: (i: number) => unknown): Promise<Abuse> {
  const conn = await initialized(layout);
  conn.stopReading();
  for (let i = 1; i <= count; i++) conn.send({ id: i, method, params: params(i) });
  return {
    async finish() {
      conn.resumeReading();
      const answers: Message[] = [];
      for (let i = 1; i <= count; i++) answers.push(await conn.next((m) => m.id === i, 120_000));
      conn.close();
      return answers;
    },
  };
}

/**
 * A session holding about `totalBytes` of events: prompts of `promptBytes` each, from a
 * connection that reads normally. The daemon needs no model for this: each turn fails
 * for want of an API key and the prompts stay in the log.
 */
export async function bigSession(layout: DataLayout, workspace: string, totalBytes: number, promptBytes = 256 * 1024): Promise<string> {
  const conn = await initialized(layout);
  const created = await conn.request(1, 'session/create', { workspace, title: 'big' });
  const sessionId = (created.result as { sessionId: string }).sessionId;
  const text = 'y'.repeat(promptBytes);
  for (let i = 0; i * promptBytes < totalBytes; i++) {
    const reply = await conn.request(2 + i, 'session/prompt', { sessionId, content: text });
    if (reply.error) throw new Error(`prompt failed: ${JSON.stringify(reply.error)}`);
  }
  conn.close();
  return sessionId;
}

/** The burst: `count` pipelined reads of a whole session, never read back. */
export function burst(layout: DataLayout, sessionId: string, count = 200): Promise<Abuse> {
  return pipelined(layout, count, 'session/events', () => ({ sessionId, from: 0 }));
}

/** The slow reader: `count` subscriptions from 0 on one connection that never reads. */
export function slowSubscribers(layout: DataLayout, sessionId: string, count = 60): Promise<Abuse> {
  return pipelined(layout, count, 'session/subscribe', () => ({ sessionId, from: 0 }));
}

/** `count` session/create with a system prompt of `systemBytes`, then one session/list. */
export async function bigCreates(layout: DataLayout, workspace: string, count = 60, systemBytes = 15_000_000): Promise<Abuse> {
  const system = 's'.repeat(systemBytes);
  const abuse = await pipelined(layout, count, 'session/create', () => ({ workspace, system }));
  return {
    async finish() {
      const answers = await abuse.finish();
      const conn = await initialized(layout);
      answers.push(await conn.request(1, 'session/list', {}));
      conn.close();
      return answers;
    },
  };
}

/** The whole fuzz corpus over the socket; resolves with each case's outcome. */
export async function fuzz(layout: DataLayout): Promise<string[]> {
  const conns = await openConnections(() => RawConnection.open(layout.socket));
  const outcomes: string[] = [];
  for (const [n, c] of corpus.entries()) outcomes.push(`${c.name}: ${JSON.stringify(await replay(c, conns, n))}`);
  conns.fresh.close();
  conns.ready.close();
  return outcomes;
}

/** Resident set of a process now, and its high-water mark since the last reset, from /proc. */
export function rss(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { now: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Resets a process's RSS high-water mark (Linux: clear_refs 5), so the next peak is this scenario's own. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}
