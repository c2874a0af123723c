/**
 * Runs a process under the strongest memory limit this machine allows, for tests that
 * must show the daemon survives hostile input without growing past a bound:
 *
 * 1. a cgroup v1 memory cgroup (memory.limit_in_bytes, and memsw when swap accounting
 *    exists), made as a child of the cgroup this process is already in;
 * 2. a cgroup v2 child with memory.max, where the memory controller is delegated to us;
 * 3. otherwise V8's heap limit (--max-old-space-size): weaker (it does not count
 *    buffers), but still a limit the daemon dies at if it bloats.
 *
 * The kernel enforces the first two: the daemon is OOM-killed past the limit, and the
 * test sees that as a dead daemon and a non-zero oom_kill count.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export type LimitKind = 'cgroup-v1' | 'cgroup-v2' | 'v8-heap';

export interface MemoryLimit {
  kind: LimitKind;
  limitBytes: number;
  /** A shell snippet for startDaemon's `wrap`: puts the process under the limit before it execs. */
  wrap: string;
  /** Whether `pid` runs under this limit now (the kernel's own view, for cgroups). */
  holds(pid: number): boolean;
  /** The highest memory use the kernel charged to the group, when it keeps one. */
  peakBytes(): number | undefined;
  /** Processes the kernel killed for reaching the limit. */
  oomKills(): number;
  dispose(): void;
}

const V1_ROOT = '/sys/fs/cgroup/memory';
const V2_ROOTS = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'];

/** This process's own cgroup path in a hierarchy, from /proc/self/cgroup. */
function ownCgroup(match: (controllers: string) => boolean): string | undefined {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, controllers = '', path = ''] = line.split(':');
    if (match(controllers)) return path;
  }
  return undefined;
}

function tryMakeDir(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

function readNumber(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

function inGroup(dir: string, pid: number): boolean {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid));
}

function cgroupV1(limitBytes: number): MemoryLimit | undefined {
  const own = ownCgroup((c) => c.split(',').includes('memory'));
  if (own === undefined || !existsSync(join(V1_ROOT, 'memory.limit_in_bytes'))) return undefined;
  const dir = join(V1_ROOT, own, `agentd-test-${randomBytes(4).toString('hex')}`);
  if (!tryMakeDir(dir)) return undefined;
  try {
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    // With swap accounting, swap must not be a way around the limit.
    if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(limitBytes));
  } catch {
    rmdirSync(dir);
    return undefined;
  }
  return groupLimit('cgroup-v1', dir, limitBytes, { limit: 'memory.limit_in_bytes', peak: 'memory.max_usage_in_bytes', events: 'memory.oom_control' });
}

/** A limit enforced by the cgroup at `dir`, read through its control files (names differ between v1 and v2). */
function groupLimit(kind: LimitKind, dir: string, limitBytes: number, files: { limit: string; peak: string; events: string }): MemoryLimit {
  return {
    kind,
    limitBytes,
    wrap: `echo $$ > ${dir}/cgroup.procs`,
    holds: (pid) => inGroup(dir, pid) && readNumber(join(dir, files.limit)) === limitBytes,
    peakBytes: () => readNumber(join(dir, files.peak)),
    oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, files.events), 'utf8'))?.[1] ?? 0),
    dispose: () => removeGroup(dir),
  };
}

function cgroupV2(limitBytes: number): MemoryLimit | undefined {
  const own = ownCgroup((c) => c === '');
  if (own === undefined) return undefined;
  for (const root of V2_ROOTS) {
    const parent = join(root, own);
    const controllers = existsSync(join(parent, 'cgroup.controllers')) ? readFileSync(join(parent, 'cgroup.controllers'), 'utf8') : '';
    if (!controllers.split(/\s+/).includes('memory')) continue;
    const dir = join(parent, `agentd-test-${randomBytes(4).toString('hex')}`);
    if (!tryMakeDir(dir)) continue;
    try {
      writeFileSync(join(dir, 'memory.max'), String(limitBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    } catch {
      rmdirSync(dir);
      continue;
    }
    return groupLimit('cgroup-v2', dir, limitBytes, { limit: 'memory.max', peak: 'memory.peak', events: 'memory.events' });
  }
  return undefined;
}

function v8Heap(limitBytes: number): MemoryLimit {
  const mib = Math.floor(limitBytes / (1024 * 1024));
  return {
    kind: 'v8-heap',
    limitBytes,
    wrap: `export NODE_OPTIONS="--max-old-space-size=${mib}"`,
    holds: (pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`NODE_OPTIONS=--max-old-space-size=${mib}`),
    peakBytes: () => undefined,
    oomKills: () => 0,
    dispose: () => undefined,
  };
}

/** A group is removed once its processes are gone; the kernel refuses while any remain. */
function removeGroup(dir: string): void {
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** The strongest limit available here, in the order above. */
export function strongestMemoryLimit(limitBytes: number): MemoryLimit {
  return cgroupV1(limitBytes) ?? cgroupV2(limitBytes) ?? v8Heap(limitBytes);
}

/** What the machine offers, judged independently of the helper above, so a test can assert the helper picked it. */
export function expectedLimitKind(): LimitKind {
  const root = process.getuid?.() === 0;
  if (root && existsSync(join(V1_ROOT, 'memory.limit_in_bytes')) && ownCgroup((c) => c.split(',').includes('memory')) !== undefined) return 'cgroup-v1';
  const own = ownCgroup((c) => c === '');
  const delegated = own !== undefined && V2_ROOTS.some((r) => existsSync(join(r, own, 'cgroup.controllers')) && readFileSync(join(r, own, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory'));
  return root && delegated ? 'cgroup-v2' : 'v8-heap';
}
