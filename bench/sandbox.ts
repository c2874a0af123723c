/**
 * Sandbox figures, one JSON line each, every one beside its floor measured in the same run
 * (bench/sandbox/floor.ts: bubblewrap with exactly agentd's launch running /bin/true, bash -c
 * true, or an idle bash):
 *
 * - cold_provision_ms   provision with no pool vs `bwrap <agentd's args> /bin/true`, and where
 *                       the time goes (the host's own timings: node's boot, loading the bundle,
 *                       MCP initialize, configure);
 * - pool_provision_ms   provision from a warm pool (bind; the configuration goes out with it
 *                       and the first call follows), target 5 ms; after the pool idled; and
 *                       provision plus the first bash result, end to end, pooled and cold;
 * - first_bash_ms       the first bash call after provision (cold and pooled) vs
 *                       `bwrap <same args> bash -c true`;
 * - pss_per_sandbox_kb  PSS of idle sandboxes (host, shell, bubblewrap) vs idle bwrap bash;
 * - burst_50            50 provisions at once, empty pool and a pool of 50: all ready, vs 50
 *                       `bwrap /bin/true` at once and 50 `bwrap node -e 0` (any node host's floor);
 * - warm_execute_us     read_file through the provider vs the same host unisolated;
 * - ttft.sandbox.pool   time to first token of fresh sessions, lazy and eager, on a daemon
 *                       with a pool that refills while they stream, vs sessions with no
 *                       sandbox (bench/ttft/pool.ts, run as `bench:ttft` runs it).
 *
 * Arguments pick figures (default all): cold pool bash pss burst warm ttft. The machine's load is
 * printed with each figure: on a shared machine run it when load is low, and repeat.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CONFIGURE_METHOD, ConfigureResult } from '../sandbox/host/protocol.js';
import { QUIET_MS } from '../sandbox/host/idle-memory.js';
import { HOST_ENTRY } from '../sandbox/local-launch.js';
import { LocalSandbox } from '../sandbox/local-sandbox.js';
import { createLocalProvider } from '../sandbox/provider.js';
import { ChildProcessTransport } from '../sandbox/transport.js';
import type { Sandbox, SandboxProvider, SandboxSpec } from '../sandbox/types.js';
import { agentdFloor, cpuMeter, descendantsMemory, perInstance, start, timeRun, type Floor } from './sandbox/floor.js';

const RUNS = Number(process.env.RUNS ?? 30);
const POOL = 4;
/** A pooled provision after the pool has idled this long, this many times. */
const IDLE_POOL_MS = 3_000;
const IDLE_POOL_RUNS = 10;
const IDLE = 10;
const BURST = 50;
const BURST_RUNS = Number(process.env.BURST_RUNS ?? 3);
const WARM_CALLS = 2_000;
const LIMITS = { pids: 1024, memoryMb: 4096 };

const round = (n: number) => Math.round(n * 100) / 100;
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!);
}
const summary = (values: number[]) => ({ p50: percentile(values, 50), p95: percentile(values, 95), n: values.length });
const emit = (figure: Record<string, unknown>) =>
  console.log(JSON.stringify({ bench: 'sandbox', ...figure, host: { cores: availableParallelism(), loadavg1: round(loadavg()[0]!) } }));
const mean = (values: number[]) => round(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length));
const cpu = cpuMeter();
/** CPU ms that `body` used, here and in every process it started (null without a cpuacct cgroup). */
async function cpuOf<T>(body: () => Promise<T>): Promise<{ value: T; cpuMs: number | null }> {
  const before = cpu?.used();
  const value = await body();
  return { value, cpuMs: cpu && before !== undefined ? cpu.used() - before : null };
}
const cpuSummary = (values: Array<number | null>) => (values.every((v) => v !== null) ? mean(values as number[]) : null);

const scratch = realpathSync(mkdtempSync(path.join(tmpdir(), 'agentd-bench-sandbox-')));
/** Hidden as the daemon hides its data dir (outside the workspaces here, as in most layouts). */
const dataDir = path.join(scratch, 'data');
mkdirSync(dataDir);
let workspaces = 0;
function spec(name: string): SandboxSpec {
  const workspace = path.join(scratch, `ws-${workspaces++}`);
  mkdirSync(workspace);
  writeFileSync(path.join(workspace, 'tiny.txt'), 'hello\n');
  return { sessionId: name, workspace, hide: [dataDir], limits: LIMITS };
}
const pooledProvider = (size: number) => createLocalProvider({ pool: { size, hide: [dataDir], limits: LIMITS } });

async function until(what: string, condition: () => boolean, withinMs = 120_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function poolReady(provider: SandboxProvider, size: number): Promise<void> {
  await until('the pool fills', () => {
    const status = provider.pool!();
    if (status.disabled) throw new Error(`no pool: ${status.disabled}`);
    return status.ready >= size;
  });
}

async function bashTrue(sandbox: Sandbox): Promise<number> {
  const t = performance.now();
  const r = await sandbox.execute('bash', { command: 'true' });
  if (r.isError) throw new Error(JSON.stringify(r.content));
  return performance.now() - t;
}

/** Provisions, times the first bash call, closes; interleaved with the floor's runs. */
async function provisionRuns(provider: SandboxProvider, floor: Floor, beforeEach: () => Promise<void>, runs = RUNS) {
  const provision: number[] = [];
  const firstBash: number[] = [];
  const toFirstResult: number[] = [];
  const floorTrue: number[] = [];
  const floorBash: number[] = [];
  const cpuSandbox: Array<number | null> = [];
  const cpuFloor: Array<number | null> = [];
  const where = { sinceCall: [] as number[], boot: [] as number[], load: [] as number[], initialize: [] as number[], configure: [] as number[] };
  for (let i = 0; i < runs; i++) {
    await beforeEach();
    const used = await cpuOf(async () => {
      const session = spec(`run-${i}`); // its workspace is made before the clock starts
      const calledAt = performance.timeOrigin + performance.now();
      const t = performance.now();
      const sandbox = await provider.provision(session);
      provision.push(performance.now() - t);
      firstBash.push(await bashTrue(sandbox));
      toFirstResult.push(performance.now() - t);
      const h = sandbox instanceof LocalSandbox && !sandbox.pooled ? await sandbox.timings : null;
      if (h) {
        where.sinceCall.push(h.timeOrigin - calledAt);
        where.boot.push(h.bootstrapped);
        where.load.push(h.loaded - h.bootstrapped);
        where.initialize.push(h.initialized - h.loaded);
        where.configure.push(h.configured - h.initialized);
      }
      await sandbox.close();
    });
    cpuSandbox.push(used.cpuMs);
    const floorRun = await cpuOf(() => timeRun(floor.launch(['/bin/true']), floor.env));
    floorTrue.push(floorRun.value);
    cpuFloor.push(floorRun.cpuMs);
    floorBash.push(await timeRun(floor.launch(['/bin/bash', '-c', 'true']), floor.env));
  }
  return { provision: summary(provision), firstBash: summary(firstBash), toFirstResult: summary(toFirstResult), floorTrue: summary(floorTrue), floorBash: summary(floorBash), where, cpu: { sandbox: cpuSummary(cpuSandbox), floor: cpuSummary(cpuFloor) } };
}

async function coldAndPooled(floor: Floor, picked: (f: string) => boolean): Promise<void> {
  const cold = createLocalProvider();
  await (await cold.provision(spec('warm-up'))).close();
  const c = await provisionRuns(cold, floor, async () => undefined);
  await cold.close?.();
  if (picked('cold')) {
    emit({
      figure: 'cold_provision_ms',
      ...c.provision,
      floor: { what: "bwrap with agentd's launch running /bin/true", ...c.floorTrue },
      ratio_p50: round(c.provision.p50 / c.floorTrue.p50),
      target: { ratio_p50: 3 },
      cpu_ms_mean: { sandbox: c.cpu.sandbox, floor: c.cpu.floor, what: 'CPU of this process and all it started: provision, one bash call and close, vs one bwrap /bin/true' },
      where_the_time_goes_ms_mean: {
        provision_call_to_host_process_start: mean(c.where.sinceCall),
        node_bootstrap: mean(c.where.boot),
        load_host_bundle: mean(c.where.load),
        to_mcp_initialize: mean(c.where.initialize),
        to_configured: mean(c.where.configure),
        note: 'host-side times from the host process start (performance.timeOrigin); the first span is launcher, bubblewrap and exec',
      },
    });
  }
  const pool = pooledProvider(POOL);
  const p = await provisionRuns(pool, floor, () => poolReady(pool, POOL));
  // As a daemon's pool mostly is when a session comes: its hosts idle for a while.
  const idle = await provisionRuns(pool, floor, async () => (await poolReady(pool, POOL), await new Promise((r) => setTimeout(r, IDLE_POOL_MS))), IDLE_POOL_RUNS);
  await pool.close?.();
  if (picked('pool')) {
    emit({
      figure: 'pool_provision_ms',
      pool: POOL,
      ...p.provision,
      floor: { what: "bwrap with agentd's launch running /bin/true", ...p.floorTrue },
      target: { p50: 5 },
      after_idle: { idle_ms: IDLE_POOL_MS, ...idle.provision, what: 'the same once the pool has been idle that long (this VM wakes idle processes slowly)' },
      to_first_bash_result: {
        what: "provision and the first bash call's result, end to end (a pooled sandbox is handed out with its configuration on the way: the first call follows it)",
        pooled: p.toFirstResult,
        pooled_after_idle: idle.toFirstResult,
        cold: c.toFirstResult,
      },
      note: 'the refill starts in the event-loop turn after the provision returns; its fork (node spawns synchronously) lands on what runs next here, the first bash call',
      cpu_ms_mean: { sandbox: p.cpu.sandbox, what: 'bind, one bash call and close' },
    });
  }
  if (picked('bash')) {
    for (const [from, r] of [['cold', c], ['pool', p]] as const) {
      emit({
        figure: 'first_bash_ms',
        provisioned: from,
        ...r.firstBash,
        floor: { what: "bwrap with agentd's launch running bash -c true", ...r.floorBash },
        ratio_p50: round(r.firstBash.p50 / r.floorBash.p50),
        target: { ratio_p50: 1.5 },
      });
    }
  }
}

async function memory(floor: Floor): Promise<void> {
  const provider = createLocalProvider();
  const sandboxes = await Promise.all(Array.from({ length: IDLE }, (_, i) => provider.provision(spec(`idle-${i}`))));
  for (const sandbox of sandboxes) await bashTrue(sandbox); // the shell is up, as after any first call
  // Idle: past the quiet spell after which a bound host gives memory back (host/idle-memory.ts).
  await new Promise((r) => setTimeout(r, QUIET_MS + 500));
  const busy = descendantsMemory();
  await Promise.all(sandboxes.map((s) => s.close()));
  await provider.close?.();

  const pool = pooledProvider(IDLE);
  await poolReady(pool, IDLE);
  await new Promise((r) => setTimeout(r, QUIET_MS + 500));
  const unbound = descendantsMemory();
  await pool.close?.();

  /** IDLE copies of `command` in agentd's launch, idle: their memory, once they have settled. */
  const idleCopies = async (command: string[]) => {
    const copies = Array.from({ length: IDLE }, () => start(floor.launch(command), floor.env, 'pipe'));
    await new Promise((r) => setTimeout(r, 1_000));
    const memory = descendantsMemory();
    for (const child of copies) child.stdin!.end(); // each ends with its stdin
    await Promise.all(copies.map((child) => new Promise((r) => child.once('exit', r))));
    return memory;
  };
  const idle = await idleCopies(['/bin/bash', '--noprofile', '--norc']);
  // What any node host starts from: node itself, running nothing.
  const bareNode = await idleCopies([process.execPath, '-e', "process.stdin.resume().on('end', () => process.exit())"]);
  const sandbox = perInstance(busy, IDLE);
  const floorBash = perInstance(idle, IDLE);
  emit({
    figure: 'pss_per_sandbox_kb',
    sandboxes: IDLE,
    ...sandbox,
    pooled_unbound: perInstance(unbound, IDLE),
    floor: { what: "idle bash in bwrap with agentd's launch", ...floorBash },
    ratio: round(sandbox.pss / floorBash.pss),
    target: { ratio: 5 },
    bare_node: { what: "idle node running nothing, in bwrap with agentd's launch: any node host's own floor", ...perInstance(bareNode, IDLE) },
    note: 'PSS from smaps_rollup of every process below the bench, with the sandboxes idle after one bash call (past the host quiet-spell collection, QUIET_MS); shared pages are split between the processes sharing them',
  });
}

/** 50 at once: how long until all are ready, and each; the CPU that took (closing apart). */
async function burst(provider: SandboxProvider, name: string): Promise<{ all: number; each: number[]; cpuMs: number | null }> {
  const each: number[] = [];
  const t = performance.now();
  const { value: sandboxes, cpuMs } = await cpuOf(() =>
    Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const s = performance.now();
        const sandbox = await provider.provision(spec(`${name}-${i}`));
        each.push(performance.now() - s);
        return sandbox;
      }),
    ),
  );
  const all = performance.now() - t;
  await Promise.all(sandboxes.map((s) => s.close()));
  return { all, each, cpuMs };
}

async function bursts(floor: Floor): Promise<void> {
  const empty: number[] = [];
  const full: number[] = [];
  const floorAll: number[] = [];
  const nodeFloorAll: number[] = [];
  const emptyEach: number[] = [];
  const fullEach: number[] = [];
  const cpuCold: Array<number | null> = [];
  const cpuFloor: Array<number | null> = [];
  const cpuNodeFloor: Array<number | null> = [];
  for (let run = 0; run < BURST_RUNS; run++) {
    const cold = createLocalProvider();
    const e = await burst(cold, `cold-${run}`);
    cpuCold.push(e.cpuMs);
    await cold.close?.();
    const pool = pooledProvider(BURST);
    await poolReady(pool, BURST);
    const f = await burst(pool, `pooled-${run}`);
    await pool.close?.();
    const t = performance.now();
    const floorRun = await cpuOf(() => Promise.all(Array.from({ length: BURST }, () => timeRun(floor.launch(['/bin/true']), floor.env))));
    floorAll.push(performance.now() - t);
    cpuFloor.push(floorRun.cpuMs);
    const n = performance.now();
    const nodeRun = await cpuOf(() => Promise.all(Array.from({ length: BURST }, () => timeRun(floor.launch([process.execPath, '-e', '0']), floor.env))));
    nodeFloorAll.push(performance.now() - n);
    cpuNodeFloor.push(nodeRun.cpuMs);
    empty.push(e.all);
    full.push(f.all);
    emptyEach.push(...e.each);
    fullEach.push(...f.each);
  }
  emit({
    figure: 'burst_50',
    runs: BURST_RUNS,
    empty_pool_all_ready_ms: summary(empty),
    pool_of_50_all_ready_ms: summary(full),
    empty_pool_each_ms: summary(emptyEach),
    pool_of_50_each_ms: summary(fullEach),
    floor: { what: "50 bwrap with agentd's launch running /bin/true at once", ...summary(floorAll) },
    node_floor: { what: "50 bwrap with agentd's launch running `node -e 0` at once: any node host's own floor", ...summary(nodeFloorAll) },
    empty_pool_to_node_floor_p50: round(summary(empty).p50 / summary(nodeFloorAll).p50),
    target: { empty_pool_all_ready_p95: 1500, pool_of_50_all_ready_p95: 300 },
    cpu_ms_mean: {
      empty_pool: cpuSummary(cpuCold),
      floor: cpuSummary(cpuFloor),
      node_floor: cpuSummary(cpuNodeFloor),
      what: 'CPU until the 50 are ready (this process and all it started), vs 50 bwrap /bin/true, vs 50 bwrap node -e 0',
    },
  });
}

/** The same host, unisolated, spawned and configured by hand: what the provider adds per call. */
async function warm(): Promise<void> {
  const provider = createLocalProvider();
  const sandbox = await provider.provision(spec('warm'));
  const bare = spec('bare');
  const child = spawn(process.execPath, [HOST_ENTRY], { cwd: bare.workspace, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['pipe', 'pipe', 'inherit'] });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(new ChildProcessTransport(child));
  const config = { workspace: bare.workspace, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, mcpServers: [], scratch: bare.workspace, processScope: 'descendants' as const };
  await client.request({ method: CONFIGURE_METHOD, params: config }, ConfigureResult);
  const viaProvider: number[] = [];
  const direct: number[] = [];
  const block = 200;
  for (let done = 0; done < WARM_CALLS * 2; done += block) {
    const measured = done >= WARM_CALLS; // the first half warms both up
    for (let i = 0; i < block; i++) {
      const t = performance.now();
      await sandbox.execute('read_file', { path: 'tiny.txt' });
      if (measured) viaProvider.push((performance.now() - t) * 1000);
    }
    for (let i = 0; i < block; i++) {
      const t = performance.now();
      await client.callTool({ name: 'read_file', arguments: { path: 'tiny.txt' } });
      if (measured) direct.push((performance.now() - t) * 1000);
    }
  }
  const s = summary(viaProvider);
  const b = summary(direct);
  emit({ figure: 'warm_execute_us', tool: 'read_file (6-byte file)', ...s, baseline: { what: 'MCP callTool of the same read_file to the same host, unisolated, no provider', ...b }, ratio_p50: round(s.p50 / b.p50), target: { ratio_p50: 1.3 } });
  await client.close();
  await sandbox.close();
  await provider.close?.();
}

/** The time-to-first-token figure with a pool, from bench/ttft (its emulator and daemons are its own). */
function ttft(): void {
  const entry = new URL('./ttft.js', import.meta.url).pathname;
  const run = spawnSync(process.execPath, [entry], { env: { ...process.env, TTFT_ONLY: 'pool' }, stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`bench/ttft (pool) failed: ${run.status ?? run.signal}`);
}

const picked = new Set(process.argv.slice(2));
const wants = (figure: string) => picked.size === 0 || picked.has(figure);
const floor = await agentdFloor(spec('floor'));
try {
  if (wants('cold') || wants('pool') || wants('bash')) await coldAndPooled(floor, wants);
  if (wants('pss')) await memory(floor);
  if (wants('burst')) await bursts(floor);
  if (wants('warm')) await warm();
  if (wants('ttft')) ttft();
} finally {
  await floor.cleanup();
  rmSync(scratch, { recursive: true, force: true });
  cpu?.close();
}
