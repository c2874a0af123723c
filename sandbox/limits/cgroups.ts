/**
 * One cgroup per sandbox, under the daemon's own cgroup: `<ours>/agentd.<daemon pid>/<sandbox>`.
 * cgroup v2 where a subtree with the pids and memory controllers is delegated to us; else
 * the v1 pids and memory hierarchies (and freezer, to stop a fork bomb while killing it).
 * Everything here runs outside the sandbox, as the daemon.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mountTable } from '../isolation/mountinfo.js';
import { processAlive } from '../tools/procs.js';

export interface CgroupLimits {
  pids: number;
  memoryBytes: number;
}

/** Counter files the sandbox's host reads to tell the model which limit it hit. */
export interface CgroupCounters {
  /** `max N`: how often a fork was refused. */
  pidsEvents: string;
  /** `oom_kill N`: how often the kernel killed a process for memory. */
  memoryEvents: string;
}

export interface CgroupHandle {
  /** The cgroup.procs files a launcher writes its own pid to before it starts the sandbox. */
  procsFiles: string[];
  counters: CgroupCounters;
  /** Sets new limits (a pooled sandbox bound to a session that asked for other ones). */
  setLimits(limits: CgroupLimits): void;
  /** Kills every process in the cgroup, again and again until none is left (a fork bomb races). */
  killAll(): Promise<void>;
  /** killAll, then removes the cgroup. */
  remove(): Promise<void>;
}

export interface CgroupTree {
  version: 1 | 2;
  /** Where sandboxes' cgroups go, for `agentd doctor`. */
  where: string;
  create(id: string, limits: CgroupLimits): CgroupHandle;
  /** Removes this daemon's parent dirs once its sandboxes are gone (the next daemon sweeps what is left). */
  close(): void;
}

/** This process's cgroup path in each hierarchy: '' for v2, else the controller names. */
function ownCgroups(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match) for (const name of match[1]!.split(',')) out.set(name, match[2]!);
  }
  return out;
}

const read = (file: string) => readFileSync(file, 'utf8');
const write = (file: string, value: string) => writeFileSync(file, value);
const writable = (dir: string) => {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pidsIn(dir: string): number[] {
  try {
    return read(path.join(dir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** SIGKILLs the members of `dirs` (freezing them first when `freeze` is given) until all are empty. */
async function drain(dirs: string[], freeze?: { set(frozen: boolean): void }): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = dirs.flatMap(pidsIn);
    if (pids.length === 0 || Date.now() > deadline) return;
    freeze?.set(true);
    killPids(dirs.flatMap(pidsIn));
    freeze?.set(false);
    await sleep(5);
  }
}

async function removeDirs(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    // A killed process leaves its cgroup a moment after it is reaped.
    for (let attempt = 0; existsSync(dir) && attempt < 100; attempt++) {
      try {
        rmdirSync(dir);
      } catch {
        await sleep(10);
      }
    }
  }
}

/** Parent dirs of daemons that are gone: their sandboxes died with them, remove what is left. */
function sweepStale(roots: string[]): void {
  for (const root of roots) {
    for (const name of safeList(root)) {
      const pid = /^agentd\.(\d+)$/.exec(name)?.[1];
      if (!pid || processAlive(Number(pid))) continue;
      const parent = path.join(root, name);
      for (const child of safeList(parent)) {
        const dir = path.join(parent, child);
        if (!existsSync(path.join(dir, 'cgroup.procs'))) continue;
        killPids(pidsIn(dir));
        try {
          rmdirSync(dir);
        } catch {
          // Still busy; the next daemon tries again.
        }
      }
      try {
        rmdirSync(parent);
      } catch {
        // Still busy.
      }
    }
  }
}

const safeList = (dir: string) => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/** cgroup v1: pids, memory and (if mounted) freezer hierarchies, each under our own cgroup there. */
function v1Tree(prepare: boolean): CgroupTree | null {
  const own = ownCgroups();
  const dirOf = (controller: string): string | null => {
    const mount = mountTable().find((m) => m.fstype === 'cgroup' && m.superOptions.includes(controller));
    const at = own.get(controller);
    return mount && at !== undefined ? path.join(mount.point, at) : null;
  };
  const pids = dirOf('pids');
  const memory = dirOf('memory');
  const freezer = dirOf('freezer');
  if (!pids || !memory || !writable(pids) || !writable(memory)) return null;
  const bases = [pids, memory, ...(freezer && writable(freezer) ? [freezer] : [])].map((dir) => path.join(dir, `agentd.${process.pid}`));
  if (prepare) sweepStale(bases.map((b) => path.dirname(b)));
  return {
    version: 1,
    where: bases.map((b) => path.join(path.dirname(b), 'agentd.<daemon pid>')).join(', '),
    close: () => bases.forEach(tryRmdir),
    create(id, limits) {
      const dirs = bases.map((base) => path.join(base, id));
      for (const dir of dirs) mkdirSync(dir, { recursive: true });
      const [pidsDir, memoryDir, freezerDir] = dirs as [string, string, string | undefined];
      const setLimits = (to: CgroupLimits) => {
        write(path.join(pidsDir, 'pids.max'), String(to.pids));
        // With swap accounting, memory+swap gets the same cap: the sandbox cannot swap its way past it.
        // memsw may never be below the memory limit: lower it second, raise it first.
        const memsw = path.join(memoryDir, 'memory.memsw.limit_in_bytes');
        const files = [path.join(memoryDir, 'memory.limit_in_bytes'), ...(existsSync(memsw) ? [memsw] : [])];
        const current = Number(read(files[0]!).trim());
        for (const file of to.memoryBytes < current ? files : files.reverse()) write(file, String(to.memoryBytes));
      };
      setLimits(limits);
      const freeze = freezerDir ? { set: (frozen: boolean) => tryWrite(path.join(freezerDir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED') } : undefined;
      const killAll = () => drain(dirs, freeze);
      return {
        procsFiles: dirs.map((dir) => path.join(dir, 'cgroup.procs')),
        counters: { pidsEvents: path.join(pidsDir, 'pids.events'), memoryEvents: path.join(memoryDir, 'memory.oom_control') },
        setLimits,
        killAll,
        remove: async () => {
          await killAll();
          await removeDirs(dirs);
        },
      };
    },
  };
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not there, or not empty yet.
  }
}

function tryWrite(file: string, value: string): void {
  try {
    write(file, value);
  } catch {
    // Best effort: killing goes on without it.
  }
}

/**
 * cgroup v2: usable when our cgroup is writable and offers the pids and memory controllers.
 * A cgroup with processes cannot hand controllers to children, so unless they are enabled
 * already the daemon first moves itself into a leaf `agentd.<pid>/daemon`.
 */
function v2Tree(prepare: boolean): CgroupTree | null {
  const mount = mountTable().find((m) => m.fstype === 'cgroup2');
  const at = ownCgroups().get('');
  if (!mount || at === undefined) return null;
  const own = path.join(mount.point, at);
  const needs = ['pids', 'memory'];
  const has = (file: string) => {
    try {
      const words = read(file).split(/\s+/);
      return needs.every((c) => words.includes(c));
    } catch {
      return false;
    }
  };
  if (!writable(own) || !has(path.join(own, 'cgroup.controllers'))) return null;
  const base = path.join(own, `agentd.${process.pid}`);
  if (prepare) sweepStale([own]);
  if (prepare) {
    try {
      mkdirSync(base, { recursive: true });
      if (!has(path.join(own, 'cgroup.subtree_control'))) {
        const leaf = path.join(base, 'daemon');
        mkdirSync(leaf, { recursive: true });
        write(path.join(leaf, 'cgroup.procs'), String(process.pid));
        write(path.join(own, 'cgroup.subtree_control'), needs.map((c) => `+${c}`).join(' '));
      }
      write(path.join(base, 'cgroup.subtree_control'), needs.map((c) => `+${c}`).join(' '));
    } catch {
      return null;
    }
  }
  return {
    version: 2,
    where: path.join(own, 'agentd.<daemon pid>'),
    // The daemon's own leaf holds the daemon until it exits: the next daemon sweeps the rest.
    close: () => undefined,
    create(id, limits) {
      const dir = path.join(base, id);
      mkdirSync(dir);
      const setLimits = (to: CgroupLimits) => {
        write(path.join(dir, 'pids.max'), String(to.pids));
        write(path.join(dir, 'memory.max'), String(to.memoryBytes));
      };
      setLimits(limits);
      if (existsSync(path.join(dir, 'memory.swap.max'))) write(path.join(dir, 'memory.swap.max'), '0');
      const killAll = async () => {
        if (existsSync(path.join(dir, 'cgroup.kill'))) tryWrite(path.join(dir, 'cgroup.kill'), '1');
        await drain([dir], { set: (frozen) => tryWrite(path.join(dir, 'cgroup.freeze'), frozen ? '1' : '0') });
      };
      return {
        procsFiles: [path.join(dir, 'cgroup.procs')],
        counters: { pidsEvents: path.join(dir, 'pids.events'), memoryEvents: path.join(dir, 'memory.events') },
        setLimits,
        killAll,
        remove: async () => {
          await killAll();
          await removeDirs([dir]);
        },
      };
    },
  };
}

/**
 * The cgroup tree this daemon may use, or null (not root, nothing delegated). `prepare`
 * readies it for use (removes what dead daemons left, moves this process into a v2 leaf);
 * without it nothing is changed (for `agentd doctor`).
 */
export function detectCgroups(prepare: boolean): CgroupTree | null {
  try {
    return v2Tree(prepare) ?? v1Tree(prepare);
  } catch {
    return null;
  }
}
