/**
 * Daemon figures, one JSON line each, every one beside a baseline measured in the same
 * run: catch-up subscribe over the socket (vs reading the same log in-process), daemon
 * start to ready and `agentd stdio` attach (vs a bare node start that does the same
 * socket work), idle RSS (vs a bare node process), `daemon/status` with 10,000 sessions
 * (vs `session/get` of one session over the same connection).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { DaemonStatus, PROTOCOL_VERSION, SessionGet } from '../protocol/index.js';
import { connect } from '../clients/lib/index.js';
import { LevelSessionLog, PgSessionLog } from '../daemon/log/index.js';
import { IDLE_GC_MS, TRIM_AFTER_MS } from '../daemon/idle-gc.js';
import { freshDatabase } from '../test/support/postgres.js';
import { AGENTD_BIN, startDaemon, tempHome } from '../test/support/daemon.js';
import { backendArg, printFigure, sampleEvent, type Backend } from './log.js';

const CATCH_UP_EVENTS = 200_000;
const STATUS_SESSIONS = Number(process.env.BENCH_STATUS_SESSIONS ?? 10_000);
const STATUS_CALLS = 200;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function summary(samples: number[]): { p50: number; p95: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(quantile(sorted, 0.5)), p95: round(quantile(sorted, 0.95)) };
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const INIT_FRAME = (() => {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'bench' } } });
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
})();

/** Spawns a process, writes the initialize frame, resolves (ms) when a response frame comes back. */
function timeToFirstFrame(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.write(INIT_FRAME);
    child.stdout.once('data', () => {
      const ms = performance.now() - started;
      child.stdin.end();
      child.kill();
      resolve(ms);
    });
    child.on('error', reject);
  });
}

/** The baseline for attach: a bare node that dials the same socket and does the same exchange. */
const BARE_DIAL = `
const s = require('net').connect(process.env.SOCK);
process.stdin.pipe(s); s.pipe(process.stdout);
`;

/** The daemon's environment for a backend: PostgreSQL gets a fresh database. */
async function backendEnv(backend: Backend): Promise<Record<string, string>> {
  return backend === 'postgres' ? { AGENTD_LOG: await freshDatabase('agentd_bench') } : {};
}

export async function benchStartup(runs = 15, backend: Backend = 'level'): Promise<void> {
  const env = await backendEnv(backend);
  const starts: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const daemon = await startDaemon({ env });
    starts.push(performance.now() - t0);
    await daemon.dispose();
    const t1 = performance.now();
    await new Promise((r) => spawn(process.execPath, ['-e', '0']).on('exit', r));
    bare.push(performance.now() - t1);
  }
  const s = summary(starts);
  const b = summary(bare);
  printFigure({ bench: 'daemon.start_to_ready', ...(backend === 'postgres' ? { backend } : {}), unit: 'ms', ...s, baseline: 'bare node start to exit', baselineP50: b.p50, ratio: round(s.p50 / b.p50), target: 'p50 < 300 ms' });
}

export async function benchAttach(runs = 30): Promise<void> {
  const daemon = await startDaemon();
  try {
    const env = { ...process.env, AGENTD_HOME: daemon.layout.home, SOCK: daemon.layout.socket };
    const attach: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < runs; i++) {
      attach.push(await timeToFirstFrame(process.execPath, [AGENTD_BIN, 'stdio'], env));
      bare.push(await timeToFirstFrame(process.execPath, ['-e', BARE_DIAL], env));
    }
    const a = summary(attach);
    const b = summary(bare);
    printFigure({ bench: 'stdio.attach', unit: 'ms', ...a, baseline: 'bare node dialing the socket', baselineP50: b.p50, ratio: round(a.p50 / b.p50), overheadP50: round(a.p50 - b.p50), target: 'p50 < 50 ms' });
    // Idle RSS against a bare node process: a second after the attaches above, and once the
    // daemon has been quiet long enough to give memory back (IdleCollector: a low-memory
    // collection after IDLE_GC_MS without work, a malloc trim TRIM_AFTER_MS later).
    await new Promise((r) => setTimeout(r, 1000));
    const afterWork = rssBytes(daemon.proc.pid!);
    await new Promise((r) => setTimeout(r, IDLE_GC_MS + TRIM_AFTER_MS));
    const idle = rssBytes(daemon.proc.pid!);
    const idleNode = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    await new Promise((r) => setTimeout(r, 500));
    const bareRss = rssBytes(idleNode.pid!);
    idleNode.kill();
    printFigure({
      bench: 'daemon.idle_rss',
      unit: 'MB',
      rss: round(idle / 1048576, 1),
      rssOneSecondAfterWork: round(afterWork / 1048576, 1),
      baseline: 'bare idle node',
      baselineRss: round(bareRss / 1048576, 1),
      ratio: round(idle / bareRss),
      note: `rss is taken ${(IDLE_GC_MS + TRIM_AFTER_MS + 1000) / 1000} s after the last request, once the idle collector has run; the daemon keeps what work grew for ${IDLE_GC_MS / 1000} s`,
      target: '<= 80 MB',
    });
  } finally {
    await daemon.dispose();
  }
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

export async function benchCatchUp(backend: Backend = 'level'): Promise<void> {
  const layout = tempHome();
  const env = await backendEnv(backend);
  // Fill the log directly (the daemon is not running yet), in large batches.
  const log = env.AGENTD_LOG ? await PgSessionLog.open(env.AGENTD_LOG) : await LevelSessionLog.open(layout.db);
  const sessionId = 's_benchcatchup0000000';
  await log.create({ sessionId, createdAt: Date.now(), updatedAt: Date.now(), workspace: '/tmp', status: 'idle' }, [{ type: 'session.created', data: {} }]);
  for (let i = 1; i < CATCH_UP_EVENTS; i += 5000) {
    await log.append(sessionId, Array.from({ length: Math.min(5000, CATCH_UP_EVENTS - i) }, (_, j) => sampleEvent(200, i + j)));
  }
  // Baseline: reading the same events in-process, page by page.
  const t0 = performance.now();
  let read = 0;
  for (let from: number | undefined = 0; from !== undefined; ) {
    const page: { events: unknown[]; next?: number } = await log.read(sessionId, { from, limit: 1000 });
    read += page.events.length;
    from = page.next;
  }
  const inProcess = read / ((performance.now() - t0) / 1000);
  await log.close();

  const daemon = await startDaemon({ layout, env });
  try {
    const client = await connect({ layout, clientName: 'bench', autostart: false });
    let received = 0;
    const t1 = performance.now();
    await new Promise<void>((resolve) => {
      void client.subscribe(sessionId, 0, {
        onEvents: (events) => {
          received += events.length;
          if (received >= CATCH_UP_EVENTS) resolve();
        },
      });
    });
    const overSocket = received / ((performance.now() - t1) / 1000);
    client.close();
    printFigure({
      bench: 'subscribe.catch_up',
      ...(backend === 'postgres' ? { backend } : {}),
      unit: 'events/s',
      events: CATCH_UP_EVENTS,
      eventsPerSec: Math.round(overSocket),
      baseline: 'in-process paged read of the same log',
      baselineEventsPerSec: Math.round(inProcess),
      ratio: round(overSocket / inProcess),
      target: '>= 100,000 events/s',
    });
  } finally {
    await daemon.dispose();
  }
}

/**
 * `daemon/status` with STATUS_SESSIONS sessions in the log: it reads a counter the log
 * keeps. Baseline: `session/get` of one session over the same connection (one small
 * read); and, in-process on the same log, the listing of every session that status did
 * before.
 */
export async function benchStatus(backend: Backend = 'level'): Promise<void> {
  const layout = tempHome();
  const env = await backendEnv(backend);
  const log = env.AGENTD_LOG ? await PgSessionLog.open(env.AGENTD_LOG) : await LevelSessionLog.open(layout.db);
  const now = Date.now();
  const id = (i: number) => `s_benchstatus${String(i).padStart(8, '0')}`;
  for (let i = 0; i < STATUS_SESSIONS; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, STATUS_SESSIONS - i) }, (_, j) =>
        log.create({ sessionId: id(i + j), createdAt: now, updatedAt: now, workspace: '/tmp', status: 'idle', usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 }, config: {} }, [
          { type: 'session.created', data: { workspace: '/tmp' } },
        ]),
      ),
    );
  }
  const listing: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const page = await log.list({ limit: 1_000_000 });
    if (page.sessions.length !== STATUS_SESSIONS) throw new Error(`listed ${page.sessions.length}`);
    listing.push(performance.now() - t);
  }
  await log.close();
  const daemon = await startDaemon({ layout, env });
  try {
    const client = await connect({ layout, clientName: 'bench', autostart: false });
    const status: number[] = [];
    const get: number[] = [];
    for (let i = 0; i < STATUS_CALLS + 20; i++) {
      const t0 = performance.now();
      const s = await client.request(DaemonStatus, {});
      const t1 = performance.now();
      await client.request(SessionGet, { sessionId: id(i % STATUS_SESSIONS) });
      const t2 = performance.now();
      if (s.counts.sessions !== STATUS_SESSIONS) throw new Error(`status counted ${s.counts.sessions}`);
      if (i < 20) continue; // warm-up
      status.push(t1 - t0);
      get.push(t2 - t1);
    }
    client.close();
    const st = summary(status);
    const g = summary(get);
    printFigure({
      bench: 'daemon.status',
      ...(backend === 'postgres' ? { backend } : {}),
      unit: 'ms',
      sessions: STATUS_SESSIONS,
      calls: status.length,
      p50: st.p50,
      p95: st.p95,
      baseline: 'session/get of one session over the same connection',
      baselineP50: g.p50,
      baselineP95: g.p95,
      ratio: round(st.p50 / g.p50),
      listingEverySessionInProcessP50: summary(listing).p50,
      target: '<= 5 ms at 10k sessions',
    });
  } finally {
    await daemon.dispose();
  }
}

async function main(): Promise<void> {
  if (backendArg(process.argv.slice(2)) === 'postgres') {
    // The daemon on PostgreSQL: catch-up over the socket and start-up (attach and RSS do not depend on the log).
    await benchCatchUp('postgres');
    await benchStartup(15, 'postgres');
    await benchStatus('postgres');
    return;
  }
  await benchStatus();
  await benchCatchUp();
  await benchStartup();
  await benchAttach();
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  main().catch((error) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = 1;
  });
}
