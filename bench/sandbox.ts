// Sandbox benchmarks: one JSON line per figure, each with its same-run baseline.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createLocalProvider } from '../sandbox/provider.js';
import type { Sandbox } from '../sandbox/types.js';
import { ChildProcessTransport } from '../sandbox/transport.js';

const COLD_RUNS = 30;
const WARM_CALLS = 2_000;
const WARMUP_CALLS = Number(process.env.WARMUP ?? 3_000);
const CONCURRENT = 50;

const compiledRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hostEntry = path.join(compiledRoot, 'sandbox', 'host', 'main.js');
const packageRoot = (() => {
  for (let dir = compiledRoot; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    try {
      readFileSync(path.join(dir, 'node_modules', '@modelcontextprotocol', 'sdk', 'package.json'));
      return dir;
    } catch {
      // Keep walking up.
    }
  }
  throw new Error('package root not found');
})();

const emit = (figure: Record<string, unknown>) => console.log(JSON.stringify({ bench: 'sandbox', ...figure }));
const round = (n: number) => Math.round(n * 100) / 100;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
}
const summary = (values: number[]) => ({ p50: percentile(values, 50), p95: percentile(values, 95) });

const scratch = realpathSync(mkdtempSync(path.join(tmpdir(), 'agentd-bench-sandbox-')));
let workspaceCount = 0;
function newWorkspace(): string {
  const dir = path.join(scratch, `ws-${workspaceCount++}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'tiny.txt'), 'hello\n');
  return dir;
}

/** Spawns a stdio MCP server directly (no provider, no isolation) and completes the MCP handshake. */
async function rawConnect(args: string[], env: Record<string, string>, cwd: string): Promise<{ client: Client; close: () => Promise<void> }> {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['pipe', 'pipe', 'inherit'] });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(new ChildProcessTransport(child));
  return {
    client,
    close: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      await client.close();
      await exited;
    },
  };
}

async function coldProvision(): Promise<void> {
  const provider = createLocalProvider();
  const isolated: number[] = [];
  const firstCall: number[] = [];
  const baseline: number[] = [];
  // One untimed round of each warms the page cache and the isolation probe.
  await (await provider.provision({ sessionId: 'warmup', workspace: newWorkspace() })).close();
  for (let i = 0; i < COLD_RUNS; i++) {
    const workspace = newWorkspace();
    let t = performance.now();
    const sb = await provider.provision({ sessionId: `cold-${i}`, workspace });
    isolated.push(performance.now() - t);
    const r = await sb.execute('read_file', { path: 'tiny.txt' });
    firstCall.push(performance.now() - t);
    if (r.isError) throw new Error(`first call failed: ${JSON.stringify(r)}`);
    await sb.close();

    t = performance.now();
    const raw = await rawConnect([hostEntry], { PATH: process.env.PATH ?? '/usr/bin:/bin', AGENTD_SANDBOX_CONFIG: JSON.stringify({ workspace, mcpServers: [], scratch: workspace }) }, workspace);
    baseline.push(performance.now() - t);
    await raw.close();
  }
  const sb = await provider.provision({ sessionId: 'level', workspace: newWorkspace() });
  const isolation = sb.isolation;
  await sb.close();
  emit({
    figure: 'cold_provision_ms',
    isolation,
    runs: COLD_RUNS,
    ...summary(isolated),
    until_first_call_done: summary(firstCall),
    baseline: { what: 'plain unisolated spawn of the same host + MCP initialize', ...summary(baseline) },
    target: { p50: 150, p95: 300 },
  });
}

async function warmExecute(): Promise<void> {
  const provider = createLocalProvider();
  const sb = await provider.provision({ sessionId: 'warm', workspace: newWorkspace() });
  const minimalServer = [
    '--input-type=module',
    '-e',
    [
      "import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';",
      "import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';",
      "const s = new McpServer({ name: 'minimal', version: '0' });",
      "s.registerTool('ping', { description: 'pong' }, async () => ({ content: [{ type: 'text', text: 'pong' }] }));",
      'await s.connect(new StdioServerTransport());',
    ].join('\n'),
  ];
  const raw = await rawConnect(minimalServer, { PATH: process.env.PATH ?? '/usr/bin:/bin' }, packageRoot);
  const bareWorkspace = newWorkspace();
  const bareHost = await rawConnect([hostEntry], { PATH: process.env.PATH ?? '/usr/bin:/bin', AGENTD_SANDBOX_CONFIG: JSON.stringify({ workspace: bareWorkspace, mcpServers: [], scratch: bareWorkspace }) }, bareWorkspace);
  const sandboxTimes: number[] = [];
  const rawTimes: number[] = [];
  const bareTimes: number[] = [];
  const sandboxCall = async () => {
    const t = performance.now();
    const r = await sb.execute('read_file', { path: 'tiny.txt' });
    sandboxTimes.push(performance.now() - t);
    if (r.isError) throw new Error(JSON.stringify(r));
  };
  const rawCall = async () => {
    const t = performance.now();
    await raw.client.callTool({ name: 'ping', arguments: {} });
    rawTimes.push(performance.now() - t);
  };
  // Warm both (JIT, caches), then alternate blocks so both see the same machine load.
  const bareCall = async () => {
    const t = performance.now();
    await bareHost.client.callTool({ name: 'read_file', arguments: { path: 'tiny.txt' } });
    bareTimes.push(performance.now() - t);
  };
  for (let i = 0; i < WARMUP_CALLS; i++) {
    await sandboxCall();
    await rawCall();
    await bareCall();
  }
  sandboxTimes.length = 0;
  rawTimes.length = 0;
  bareTimes.length = 0;
  const block = 200;
  for (let done = 0; done < WARM_CALLS; done += block) {
    for (let i = 0; i < block; i++) await sandboxCall();
    for (let i = 0; i < block; i++) await rawCall();
    for (let i = 0; i < block; i++) await bareCall();
  }
  const us = (values: number[]) => values.map((v) => v * 1000);
  const s = summary(us(sandboxTimes));
  const b = summary(us(rawTimes));
  const bare = summary(us(bareTimes));
  emit({
    figure: 'warm_execute_us',
    isolation: sb.isolation,
    tool: 'read_file (6-byte file)',
    calls: WARM_CALLS,
    ...s,
    baseline: { what: 'raw MCP stdio callTool to a minimal SDK server, same run', ...b },
    ratio_p50: round(s.p50 / b.p50),
    same_tool_baseline: { what: 'raw MCP stdio callTool of the same read_file to the same host, unisolated, no provider', ...bare },
    ratio_p50_same_tool: round(s.p50 / bare.p50),
    target: { ratio_p50: 1.3 },
  });
  await raw.close();
  await bareHost.close();
  await sb.close();
}

/** Memory of the process trees under `rootPids`: RSS (shared pages counted in every process) and PSS (shared pages split). */
function treeMemoryKb(rootPids: number[]): { rss: number; pss: number } {
  const children = new Map<number, number[]>();
  for (const pid of readdirNumeric('/proc')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // Gone.
    }
  }
  const total = { rss: 0, pss: 0 };
  const stack = [...rootPids];
  while (stack.length) {
    const pid = stack.pop()!;
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      total.rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      total.pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
    } catch {
      // Gone, or a kernel thread.
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

function readdirNumeric(dir: string): number[] {
  return readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number);
}

async function concurrent(): Promise<void> {
  const provider = createLocalProvider();
  await (await provider.provision({ sessionId: 'warmup', workspace: newWorkspace() })).close();
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const times: number[] = [];
  const t0 = performance.now();
  const sandboxes: Sandbox[] = await Promise.all(
    Array.from({ length: CONCURRENT }, async (_, i) => {
      const t = performance.now();
      const sb = await provider.provision({ sessionId: `many-${i}`, workspace: newWorkspace() });
      times.push(performance.now() - t);
      return sb;
    }),
  );
  const wall = performance.now() - t0;
  await Promise.all(sandboxes.map((sb) => sb.execute('read_file', { path: 'tiny.txt' })));
  globalThis.gc?.();
  const rssAfter = process.memoryUsage().rss;
  const childPids = readdirNumeric('/proc').filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
    } catch {
      return false;
    }
  });
  const tree = treeMemoryKb(childPids);
  emit({
    figure: 'concurrent_provision',
    isolation: sandboxes[0]!.isolation,
    sandboxes: CONCURRENT,
    provision_ms: summary(times),
    all_ready_ms: round(wall),
    provider_rss_per_sandbox_kb: Math.round((rssAfter - rssBefore) / 1024 / CONCURRENT),
    sandbox_tree_per_sandbox_kb: { rss: Math.round(tree.rss / CONCURRENT), pss: Math.round(tree.pss / CONCURRENT) },
    note: 'provider = RSS growth of the daemon-side process; tree = bwrap + host processes outside the daemon (PSS splits shared pages)',
  });
  await Promise.all(sandboxes.map((sb) => sb.close()));
}

// Optional arguments pick figures: cold, warm, concurrent (default: all three).
const picked = new Set(process.argv.slice(2));
const wants = (figure: string) => picked.size === 0 || picked.has(figure);
try {
  if (wants('cold')) await coldProvision();
  if (wants('warm')) await warmExecute();
  if (wants('concurrent')) await concurrent();
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
