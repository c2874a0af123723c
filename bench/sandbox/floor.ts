/**
 * The isolation floor the sandbox figures are measured against: bubblewrap started with
 * exactly agentd's launch (same namespaces, mounts, seccomp program, cgroup join) running
 * something trivial instead of the tool host; and the memory of process trees (PSS).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HOST_ENTRY, prepareLaunch, type PreparedLaunch } from '../../sandbox/local-launch.js';
import type { Launch } from '../../sandbox/isolation/launch.js';
import { probeIsolation } from '../../sandbox/provider.js';
import { detectLimiter } from '../../sandbox/limits/index.js';
import type { SandboxSpec } from '../../sandbox/types.js';

export interface Floor {
  /** agentd's launcher and arguments, running `command` where the host would be. */
  launch(command: string[]): Launch;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** agentd's own launch for `spec` (its cgroup made once), ready to run other commands. */
export async function agentdFloor(spec: SandboxSpec): Promise<Floor> {
  const report = await probeIsolation();
  const prepared: PreparedLaunch = await prepareLaunch(spec, 'bench-floor', async (level) => report.levels[level], detectLimiter());
  const { launch } = prepared;
  const at = launch.args.lastIndexOf(HOST_ENTRY);
  if (at < 1 || launch.args[at - 1] !== process.execPath) throw new Error('the launch does not end with the host');
  return {
    launch: (command) => ({ ...launch, args: [...launch.args.slice(0, at - 1), ...command, ...launch.args.slice(at + 1)] }),
    env: prepared.env,
    cleanup: prepared.cleanup,
  };
}

/** Starts `launch` as the provider would (seccomp program on fd 3). */
export function start(launch: Launch, env: Record<string, string>, stdin: 'ignore' | 'pipe'): ChildProcess {
  const child = spawn(launch.command, launch.args, { cwd: launch.cwd, env, stdio: [stdin, 'ignore', 'inherit', ...(launch.fd3 ? (['pipe'] as const) : [])] });
  if (launch.fd3) (child.stdio[3] as NodeJS.WritableStream).on('error', () => undefined).end(launch.fd3);
  return child;
}

/** Runs `launch` to its end; the time it took, in ms. */
export function timeRun(launch: Launch, env: Record<string, string>): Promise<number> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const child = start(launch, env, 'ignore');
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t) : reject(new Error(`${launch.command} exited with ${code}`))));
  });
}

/**
 * CPU time (ms) used by this process and everything it starts, from a cgroup of its own in
 * the cgroup v1 cpuacct hierarchy (root); null elsewhere. Unlike wall time, it barely moves
 * with what else the machine runs.
 */
export function cpuMeter(): { used(): number; close(): void } | null {
  const own = /^\d+:cpuacct(?:,[^:]*)?:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  if (own === undefined) return null;
  const parent = path.join('/sys/fs/cgroup/cpuacct', own);
  const dir = path.join(parent, `agentd-bench-${process.pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'cgroup.procs'), String(process.pid));
  } catch {
    return null;
  }
  return {
    used: () => Number(readFileSync(path.join(dir, 'cpuacct.usage'), 'utf8')) / 1e6,
    close: () => {
      writeFileSync(path.join(parent, 'cgroup.procs'), String(process.pid));
      // Emptied a moment after its last process is reaped; a dir left behind is harmless and empty.
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          return rmdirSync(dir);
        } catch {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    },
  };
}

function children(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.set(ppid, [...(out.get(ppid) ?? []), Number(name)]);
    } catch {
      // Gone.
    }
  }
  return out;
}

export interface TreeMemory {
  pssKb: number;
  rssKb: number;
  processes: number;
  /** PSS (kB) by command name (bwrap, node, bash, ...): where the memory is. */
  pssKbByCommand: Record<string, number>;
}

/** PSS and RSS (kB) of every process below this one, and how many there are. */
export function descendantsMemory(): TreeMemory {
  const tree = children();
  const total: TreeMemory = { pssKb: 0, rssKb: 0, processes: 0, pssKbByCommand: {} };
  const stack = [...(tree.get(process.pid) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const pss = Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      total.pssKb += pss;
      total.rssKb += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      total.processes++;
      total.pssKbByCommand[command] = (total.pssKbByCommand[command] ?? 0) + pss;
    } catch {
      // Gone, or a kernel thread.
    }
    stack.push(...(tree.get(pid) ?? []));
  }
  return total;
}

/** `memory`'s figures per sandbox (or per floor instance): totals and by command, divided by `count`. */
export function perInstance(memory: TreeMemory, count: number) {
  const each = (kb: number) => Math.round(kb / count);
  return {
    pss: each(memory.pssKb),
    rss: each(memory.rssKb),
    processes: Math.round((memory.processes / count) * 100) / 100,
    pss_by_command: Object.fromEntries(Object.entries(memory.pssKbByCommand).map(([command, kb]) => [command, each(kb)])),
  };
}
