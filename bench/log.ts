/**
 * Session log figures, one JSON line each: durable append throughput under concurrency
 * (against fsync-per-event JSONL files in the same run) and range-read latency by session
 * size. The pieces are exported so daemon-level figures can join this script.
 *
 * `--backend postgres` prints the same figures for PgSessionLog instead, each beside
 * LevelSessionLog measured in the same run by the same code (a LogFactory per backend),
 * plus the in-process catch-up rate of a subscription. It uses the test PostgreSQL server
 * of test/support/postgres.ts (AGENTD_TEST_PG, else a private cluster stopped at exit) and
 * a fresh database per figure.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { LevelSessionLog, PgSessionLog } from '../daemon/log/index.js';
import type { CommitStats, NewEvent, SessionLog, StoredEvent, Subscription } from '../daemon/log/index.js';
import { eventKey, metaKey } from '../daemon/log/keys.js';
import { dropDatabase, freshDatabase } from '../test/support/postgres.js';

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

/** A log under test: any backend, with its group-commit counters. */
export type BenchLog = SessionLog & { commitStats(): CommitStats };

/** Sessions `s_read<size>` of these sizes, written before the log opens for the figure. */
export interface FillOptions {
  sizes: readonly number[];
  eventBytes: number;
}

/** Makes a fresh, empty store per call, so that figures do not share state. */
export interface LogFactory {
  name: 'leveldb' | 'postgres';
  /** How `fill` writes its sessions, for the figures' notes. */
  fillNote: string;
  /** Runs `body` on a fresh log, its sessions filled by the backend's bulk path (setup, not measured); closes and removes it after. */
  withLog<T>(body: (log: BenchLog) => Promise<T>, fill?: FillOptions): Promise<T>;
}

export const levelFactory: LogFactory = {
  name: 'leveldb',
  fillNote: 'LevelDB: unsynced 10k-event batches straight into the store',
  withLog: (body, fill) =>
    withTempDir('agentd-bench-log-', async (dir) => {
      if (fill) await buildSessions(dir, fill.sizes, fill.eventBytes);
      const log = await LevelSessionLog.open(dir);
      try {
        return await body(log);
      } finally {
        await log.close();
      }
    }),
};

/** PgSessionLog on a new database of the test server per call, dropped afterwards. */
export const pgFactory: LogFactory = {
  name: 'postgres',
  fillNote: 'PostgreSQL: one INSERT ... SELECT generate_series per session straight into the events and sessions tables, then VACUUM ANALYZE',
  withLog: async (body, fill) => {
    const url = await freshDatabase('agentd_bench');
    try {
      const log = await PgSessionLog.open(url);
      try {
        if (fill) await fillPg(log, fill);
        return await body(log);
      } finally {
        await log.close();
      }
    } finally {
      await dropDatabase(url);
    }
  },
};

/** The same sessions as buildSessions, by bulk SQL: seconds, where 1M appends would take minutes. */
async function fillPg(log: PgSessionLog, fill: FillOptions): Promise<void> {
  for (const size of fill.sizes) {
    const id = `s_read${size}`;
    const ts = Date.now();
    const sample = sampleEvent(fill.eventBytes, 0);
    await log.pool.query(`INSERT INTO ${log.table('sessions')} (session_id, head, meta) VALUES ($1, $2, $3::jsonb)`, [id, size, JSON.stringify({ sessionId: id, createdAt: ts, updatedAt: ts })]);
    // data as JSON.stringify(sampleEvent(eventBytes, seq).data) writes it: {"i":seq,"text":"..."}.
    await log.pool.query(
      `INSERT INTO ${log.table('events')} (session_id, seq, ts, type, data)
       SELECT $1, k, $2, $3, '{"i":' || k || ',"text":' || $4::text || '}' FROM generate_series(0, $5::bigint - 1) AS k`,
      [id, ts, sample.type, JSON.stringify(sample.data.text), size],
    );
  }
  // Settled pages (hint bits, statistics), as a table that has lived a while has them.
  await log.pool.query(`VACUUM ANALYZE ${log.table('events')}, ${log.table('sessions')}`);
}


/** Durable appends, one event per append, each session awaiting its own. */
export async function benchAppend(factory: LogFactory, options: AppendOptions): Promise<{ eventsPerSec: number; appendsPerBatch: number; batches: number }> {
  return factory.withLog(async (log) => {
    for (let s = 0; s < options.sessions; s++) await log.create({ sessionId: sessionId(s), createdAt: Date.now(), updatedAt: Date.now() }, []);
    const before = log.commitStats();
    const { count, elapsed } = await concurrentLoops(options.sessions, options.seconds, async (w, i) => {
      await log.append(sessionId(w), [sampleEvent(options.eventBytes, i)]);
    });
    const after = log.commitStats();
    // The appends' batches alone, without the creates before them.
    const batches = after.batches - before.batches;
    return { eventsPerSec: count / elapsed, appendsPerBatch: (after.entries - before.entries) / batches, batches };
  });
}

/** Durable appends through LevelSessionLog, one event per append, each session awaiting its own. */
export async function benchLevelAppend(options: AppendOptions): Promise<{ eventsPerSec: number; appendsPerBatch: number }> {
  return benchAppend(levelFactory, options);
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

/** PgSessionLog appends beside LevelSessionLog's, same sessions and events, this run. */
export async function pgAppendFigure(options: AppendOptions): Promise<Figure> {
  const level = await benchAppend(levelFactory, options);
  const postgres = await benchAppend(pgFactory, options);
  const target = 10_000;
  return {
    bench: 'log.append',
    backend: 'postgres',
    sessions: options.sessions,
    eventBytes: options.eventBytes,
    seconds: options.seconds,
    eventsPerSec: Math.round(postgres.eventsPerSec),
    baselineEventsPerSec: Math.round(level.eventsPerSec),
    baseline: 'LevelSessionLog, same sessions and events, this run',
    ratio: round(postgres.eventsPerSec / level.eventsPerSec),
    appendsPerBatch: round(postgres.appendsPerBatch),
    batches: postgres.batches,
    baselineAppendsPerBatch: round(level.appendsPerBatch),
    target: { eventsPerSec: target },
    met: postgres.eventsPerSec >= target,
  };
}

export interface ReadOptions {
  sizes: readonly number[];
  reads: number;
  limit: number;
  eventBytes: number;
}

/** Sorted latencies (ms) of `read(limit)` at random positions in one session, after a warm-up. */
async function readLatencies(log: SessionLog, id: string, size: number, reads: number, limit: number): Promise<number[]> {
  const randomFrom = (): number => Math.floor(Math.random() * Math.max(1, size - limit));
  for (let i = 0; i < 200; i++) await log.read(id, { from: randomFrom(), limit });
  const times: number[] = [];
  for (let i = 0; i < reads; i++) {
    const start = performance.now();
    const page = await log.read(id, { from: randomFrom(), limit });
    times.push(performance.now() - start);
    if (page.events.length !== Math.min(limit, size)) throw new Error(`short read in ${id}`);
  }
  return times.sort((a, b) => a - b);
}

/** Latency of `read(limit)` at random positions, per session size. */
export async function readFigures(options: ReadOptions, factory: LogFactory = levelFactory): Promise<Figure[]> {
  return factory.withLog(async (log) => {
    const figures: Figure[] = [];
    let baselineP50: number | undefined;
    for (const size of options.sizes) {
      const times = await readLatencies(log, `s_read${size}`, size, options.reads, options.limit);
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
  }, options);
}

/** PgSessionLog positional reads in one big session, beside LevelSessionLog's in the same session, this run. */
export async function pgReadFigure(options: { size: number; reads: number; limit: number; eventBytes: number }): Promise<Figure> {
  const fill = { sizes: [options.size], eventBytes: options.eventBytes };
  const latencies = (log: BenchLog): Promise<number[]> => readLatencies(log, `s_read${options.size}`, options.size, options.reads, options.limit);
  const level = await levelFactory.withLog(latencies, fill);
  const postgres = await pgFactory.withLog(latencies, fill);
  const p50 = percentile(postgres, 50);
  const target = 2;
  return {
    bench: 'log.read',
    backend: 'postgres',
    sessionEvents: options.size,
    limit: options.limit,
    reads: options.reads,
    p50Ms: round(p50),
    p99Ms: round(percentile(postgres, 99)),
    baselineP50Ms: round(percentile(level, 50)),
    baselineP99Ms: round(percentile(level, 99)),
    baseline: 'LevelSessionLog, same session, this run',
    ratio: round(p50 / percentile(level, 50)),
    target: { p50Ms: target },
    met: p50 < target,
    note: `sessions filled in bulk, not by appends: ${pgFactory.fillNote}; ${levelFactory.fillNote}`,
  };
}

/** Events/s of `subscribe(id, 0)` until the whole session (`size` events, no new ones) is delivered, in order. */
async function catchUpRate(log: SessionLog, id: string, size: number): Promise<number> {
  let next = 0;
  let subscription: Subscription | undefined;
  const start = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const listener = (events: StoredEvent[]): void => {
        for (const event of events) {
          if (event.seq !== next) return reject(new Error(`catch-up of ${id} delivered seq ${event.seq}, expected ${next}`));
          next++;
        }
        if (next >= size) resolve();
      };
      log.subscribe(id, 0, listener).then((sub) => {
        subscription = sub;
        void sub.ended.then((end) => reject(new Error(`catch-up of ${id} ended (${end.reason}) at ${end.next} of ${size}`)));
      }, reject);
    });
    return size / ((performance.now() - start) / 1000);
  } finally {
    subscription?.close();
  }
}

/** PgSessionLog catch-up from 0 in-process, beside LevelSessionLog's on the same session, this run. */
export async function pgCatchUpFigure(options: { size: number; eventBytes: number }): Promise<Figure> {
  const fill = { sizes: [options.size], eventBytes: options.eventBytes };
  const rate = (log: BenchLog): Promise<number> => catchUpRate(log, `s_read${options.size}`, options.size);
  const level = await levelFactory.withLog(rate, fill);
  const postgres = await pgFactory.withLog(rate, fill);
  return {
    bench: 'log.catch_up',
    backend: 'postgres',
    unit: 'events/s',
    events: options.size,
    eventsPerSec: Math.round(postgres),
    baselineEventsPerSec: Math.round(level),
    baseline: 'LevelSessionLog subscribe from 0 in-process, same session, this run',
    ratio: round(postgres / level),
    note: `subscribe(sessionId, 0, listener) with default batch size, timed until the last event is delivered; sessions filled in bulk: ${pgFactory.fillNote}; ${levelFactory.fillNote}`,
  };
}

export type Backend = 'level' | 'postgres';

/** `--backend level|postgres` (or `--backend=...`) from command-line arguments; default level. */
export function backendArg(argv: readonly string[]): Backend {
  let backend = 'level';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--backend') backend = argv[++i] ?? '';
    else if (arg.startsWith('--backend=')) backend = arg.slice('--backend='.length);
    else throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: [--backend level|postgres]`);
  }
  if (backend !== 'level' && backend !== 'postgres') throw new Error(`--backend must be level or postgres, not ${JSON.stringify(backend)}`);
  return backend;
}

export async function runLogBench(backend: Backend = 'level'): Promise<void> {
  if (backend === 'postgres') {
    printFigure(await pgAppendFigure({ sessions: 64, seconds: 4, eventBytes: 200 }));
    printFigure(await pgReadFigure({ size: 1_000_000, reads: 3000, limit: 100, eventBytes: 200 }));
    printFigure(await pgCatchUpFigure({ size: 100_000, eventBytes: 200 }));
    return;
  }
  printFigure(await appendFigure({ sessions: 64, seconds: 4, eventBytes: 200 }));
  for (const figure of await readFigures({ sizes: [1_000, 100_000, 1_000_000], reads: 3000, limit: 100, eventBytes: 200 })) printFigure(figure);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let backend: Backend;
  try {
    backend = backendArg(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
  await runLogBench(backend);
}
