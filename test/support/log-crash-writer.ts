/**
 * Child process for test/log-crash.test.ts: opens a session log (a LevelDB directory or a
 * postgres:// URL) and appends until it
 * is killed (mode `crash`) or until storage fails (mode `fill`, run under a file size
 * limit; mode `recover` then waits for a line on stdin and appends again). Every acknowledged event is printed as one JSON line *after* its append resolved:
 *   {"sessionId":"s_crash_00","seq":12,"sha256":"<hex of JSON.stringify(data)>","uid":"<run>:<n>"}
 * A failure is printed as {"error":{"kind":...,"message":...}}.
 * In `crash` mode every third append of a session is followed by a checkpoint of about
 * 64 KiB that names its seq and carries its own hash (see checkpointState), so a kill can
 * land in the middle of one and the test can tell a whole checkpoint from a torn one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { LogError } from '../../daemon/log/index.js';
import { openLogAt } from './log.js';
import type { NewEvent, SessionLog } from '../../daemon/log/index.js';

export interface AckLine {
  sessionId: string;
  seq: number;
  sha256: string;
  uid: string;
}

export function sha256OfData(data: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(data)).digest('hex');
}

/** Synchronous, so a line on the pipe means the ack happened before any kill. */
function print(line: unknown): void {
  writeSync(1, `${JSON.stringify(line)}\n`);
}

function makeEvents(run: string, counter: { n: number }, count: number, padBytes: number): NewEvent[] {
  return Array.from({ length: count }, () => {
    const uid = `${run}:${counter.n++}`;
    return { type: 'crash.note', data: { uid, text: randomBytes(padBytes).toString('base64'), mark: 'é✓😀\u0000"\\' } };
  });
}

async function ensureSession(log: SessionLog, sessionId: string): Promise<void> {
  if ((await log.getMeta(sessionId)) === undefined) {
    const now = Date.now();
    await log.create({ sessionId, createdAt: now, updatedAt: now }, []);
  }
}

async function appendAndAck(log: SessionLog, sessionId: string, events: NewEvent[]): Promise<number[]> {
  const seqs = await log.append(sessionId, events);
  for (const [i, seq] of seqs.entries()) {
    const data = events[i]!.data;
    print({ sessionId, seq, sha256: sha256OfData(data), uid: data['uid'] });
  }
  return seqs;
}

/** A checkpoint state that can be checked whole: its seq, a pad, and the pad's hash. */
export function checkpointState(seq: number): string {
  const pad = randomBytes(48 * 1024).toString('base64');
  return JSON.stringify({ seq, pad, sha256: createHash('sha256').update(pad).digest('hex') });
}

/** Whether `state` is one checkpointState(seq) wrote, whole. */
export function isWholeCheckpoint(seq: number, state: string): boolean {
  const body = JSON.parse(state) as { seq: number; pad: string; sha256: string };
  return body.seq === seq && createHash('sha256').update(body.pad).digest('hex') === body.sha256;
}

async function crash(log: SessionLog, sessions: number): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const counter = { n: 0 };
  const ids = Array.from({ length: sessions }, (_, i) => `s_crash_${String(i).padStart(2, '0')}`);
  for (const id of ids) await ensureSession(log, id);
  print({ ready: true });
  await Promise.all(
    ids.map(async (id, k) => {
      for (let i = 0; ; i++) {
        const seqs = await appendAndAck(log, id, makeEvents(run, counter, 1 + ((i + k) % 3), 100));
        const head = seqs.at(-1)! + 1;
        if (i % 3 === k % 3) await log.putCheckpoint(id, { seq: head, state: checkpointState(head) });
      }
    }),
  );
}

async function fill(log: SessionLog, counter = { n: 0 }): Promise<void> {
  await ensureSession(log, 's_fill');
  for (;;) {
    try {
      await appendAndAck(log, 's_fill', makeEvents('fill', counter, 1, 1500));
    } catch (error) {
      const kind = error instanceof LogError ? error.kind : 'unexpected';
      print({ error: { kind, message: (error as Error).message } });
      return;
    }
  }
}

/** `recover`: fill until storage fails, wait for a line on stdin (room was made), then append 5 more. */
async function fillThenRecover(log: SessionLog): Promise<void> {
  const counter = { n: 0 };
  await fill(log, counter);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  for (let i = 0; i < 5; i++) {
    try {
      await appendAndAck(log, 's_fill', makeEvents('after', counter, 1, 100));
    } catch (error) {
      print({ error: { kind: error instanceof LogError ? error.kind : 'unexpected', message: (error as Error).message } });
    }
  }
}

async function main(): Promise<void> {
  const [dir, mode = 'crash', sessions = '16'] = process.argv.slice(2);
  if (!dir) throw new Error('usage: log-crash-writer <dir|postgres-url> [crash|fill] [sessions]');
  const log = await openLogAt(dir);
  if (mode === 'fill') await fill(log);
  else if (mode === 'recover') await fillThenRecover(log);
  else await crash(log, Number(sessions));
  // Exit without close(): after a storage failure LevelDB refuses to write anyway.
  process.exit(0);
}

// Only as a child process with a directory: the tests import the helpers above, and
// `node --test dist/test/` also runs this file bare, where it must do nothing.
if (process.argv[1] !== undefined && process.argv[2] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    print({ error: { kind: error instanceof LogError ? error.kind : 'unexpected', message: String(error) } });
    process.exit(1);
  });
}
