/**
 * Session log figures, one JSON line each: durable append throughput under concurrency
 * (against fsync-per-event JSONL files in the same run) and range-read latency by session
 * size. The pieces are exported so daemon-level figures can join this script.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { LevelSessionLog } from '../daemon/log/index.js';
import type { NewEvent } from '../daemon/log/index.js';
import { eventKey, metaKey } from '../daemon/log/keys.js';

export interface Figure {
  bench: string;
  [key: string]: unknown;
}

export function printFigure(figure: Figure): void {
  process.stdout.write(`${JSON.stringify(figure)}\n`);
}

/** Runs `body` with a fresh temp dir, removed afterwards. */
export async function withTempDir<T>(prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An event whose stored JSON is about `bytes` long. */
export function sampleEvent(bytes: number, i: number): NewEvent {
  const text = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27)).slice(0, Math.max(0, bytes - 70));
  return { type: 'assistant.message', data: { i, text } };
}

function sessionId(i: number): string {
  return `s_bench${String(i).padStart(4, '0')}`;
}

/** Runs `writers` loops that each await one durable write at a time until `seconds` pass. */
async function concurrentLoops(writers: number, seconds: number, write: (writer: number, i: number) => Promise<void>): Promise<{ count: number; elapsed: number }> {
  let count = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await write(w, i);
        count++;
      }
    }),
  );
  return { count, elapsed: (performance.now() - start) / 1000 };
}

export interface AppendOptions {
  sessions: number;
  seconds: number;
  eventBytes: number;
}

/** Durable appends through LevelSessionLog, one event per append, each session awaiting its own. */
export async function benchLevelAppend(options: AppendOptions): Promise<{ eventsPerSec: number; appendsPerBatch: number }> {
  return withTempDir('agentd-bench-log-', async (dir) => {
    const log = await LevelSessionLog.open(dir);
    try {
      for (let s = 0; s < options.sessions; s++) await log.create({ sessionId: sessionId(s), createdAt: Date.now(), updatedAt: Date.now() }, []);
      const { count, elapsed } = await concurrentLoops(options.sessions, options.seconds, async (w, i) => {
        await log.append(sessionId(w), [sampleEvent(options.eventBytes, i)]);
      });
      const stats = log.commitStats();
      return { eventsPerSec: count / elapsed, appendsPerBatch: stats.entries / stats.batches };
    } finally {
      await log.close();
    }
  });
}

/** The baseline: one JSONL file per session, appendFile + datasync per event. */
export async function benchJsonlFsync(options: AppendOptions): Promise<number> {
  return withTempDir('agentd-bench-jsonl-', async (dir) => {
    const files = await Promise.all(Array.from({ length: options.sessions }, (_, s) => open(join(dir, `${sessionId(s)}.jsonl`), 'a')));
    try {
      const { count, elapsed } = await concurrentLoops(options.sessions, options.seconds, async (w, i) => {
        const event = sampleEvent(options.eventBytes, i);
        await files[w]!.appendFile(`${JSON.stringify({ seq: i, ts: Date.now(), ...event })}\n`);
        await files[w]!.datasync();
      });
      return count / elapsed;
    } finally {
      await Promise.all(files.map((f) => f.close()));
    }
  });
}

export async function appendFigure(options: AppendOptions): Promise<Figure> {
  const baseline = await benchJsonlFsync(options);
  const { eventsPerSec, appendsPerBatch } = await benchLevelAppend(options);
  return {
    bench: 'log.append',
    sessions: options.sessions,
    eventBytes: options.eventBytes,
    seconds: options.seconds,
    eventsPerSec: Math.round(eventsPerSec),
    baselineEventsPerSec: Math.round(baseline),
    baseline: 'jsonl file per session, appendFile + datasync per event',
    ratio: round(eventsPerSec / baseline),
    appendsPerBatch: round(appendsPerBatch),
    target: { eventsPerSec: 50_000, ratio: 10 },
  };
}

/** Writes sessions of the given sizes with big unsynced batches: setup, not a figure. */
async function buildSessions(dir: string, sizes: readonly number[], eventBytes: number): Promise<void> {
  const db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  try {
    for (const size of sizes) {
      const id = `s_read${size}`;
      await db.put(metaKey(id), JSON.stringify({ sessionId: id, createdAt: Date.now(), updatedAt: Date.now() }));
      for (let from = 0; from < size; from += 10_000) {
        const ops = [];
        const ts = Date.now();
        for (let seq = from; seq < Math.min(size, from + 10_000); seq++) {
          ops.push({ type: 'put' as const, key: eventKey(id, seq), value: JSON.stringify({ seq, ts, ...sampleEvent(eventBytes, seq) }) });
        }
        await db.batch(ops, { sync: false });
      }
    }
  } finally {
    await db.close();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export interface ReadOptions {
  sizes: readonly number[];
  reads: number;
  limit: number;
  eventBytes: number;
}

/** Latency of `read(limit)` at random positions, per session size. */
export async function readFigures(options: ReadOptions): Promise<Figure[]> {
  return withTempDir('agentd-bench-read-', async (dir) => {
    await buildSessions(dir, options.sizes, options.eventBytes);
    const log = await LevelSessionLog.open(dir);
    try {
      const figures: Figure[] = [];
      let baselineP50: number | undefined;
      for (const size of options.sizes) {
        const id = `s_read${size}`;
        const randomFrom = (): number => Math.floor(Math.random() * Math.max(1, size - options.limit));
        for (let i = 0; i < 200; i++) await log.read(id, { from: randomFrom(), limit: options.limit });
        const times: number[] = [];
        for (let i = 0; i < options.reads; i++) {
          const start = performance.now();
          const page = await log.read(id, { from: randomFrom(), limit: options.limit });
          times.push(performance.now() - start);
          if (page.events.length !== Math.min(options.limit, size)) throw new Error(`short read in ${id}`);
        }
        times.sort((a, b) => a - b);
        const p50 = percentile(times, 50);
        baselineP50 ??= p50;
        figures.push({
          bench: 'log.read',
          sessionEvents: size,
          limit: options.limit,
          reads: options.reads,
          p50Ms: round(p50),
          p99Ms: round(percentile(times, 99)),
          baselineP50Ms: round(baselineP50),
          baseline: `p50 in the ${options.sizes[0]}-event session`,
          ratio: round(p50 / baselineP50),
          target: { p50Ms: 1, p99Ms: 5 },
        });
      }
      return figures;
    } finally {
      await log.close();
    }
  });
}

export async function runLogBench(): Promise<void> {
  printFigure(await appendFigure({ sessions: 64, seconds: 4, eventBytes: 200 }));
  for (const figure of await readFigures({ sizes: [1_000, 100_000, 1_000_000], reads: 3000, limit: 100, eventBytes: 200 })) printFigure(figure);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runLogBench();
}
