/**
 * Per-sandbox process and memory limits, by the best mechanism this daemon has:
 * - a cgroup per sandbox (v2 delegated subtree, else v1 as root): pids.max and the memory
 *   limit cover the whole sandbox, and its counters tell which limit was hit;
 * - otherwise rlimits set inside the sandbox once its user namespace exists: RLIMIT_NPROC
 *   counts tasks per user namespace (Linux 5.14+), so it caps the sandbox as a whole, and
 *   RLIMIT_DATA caps each process's memory. RLIMIT_NPROC does not bind uid 0, and without a
 *   user namespace of its own (isolation "none") it would count every process of the user,
 *   so there it is not used.
 */
import type { IsolationLevel, LimitMechanism, LimitsReport, SandboxLimits } from '../types.js';
import { detectCgroups, type CgroupCounters, type CgroupHandle, type CgroupTree } from './cgroups.js';

/** How one sandbox is held to its limits: what its launcher and its host need to know. */
export interface LimitPlacement {
  pids: LimitMechanism;
  memory: LimitMechanism;
  /** cgroup.procs files the launcher joins before it starts anything. */
  procsFiles: string[];
  /** Counter files (outside paths) the host reads to report a limit that was hit. */
  counters?: CgroupCounters;
  /** Applied inside, after the user namespace exists. */
  rlimits?: { nproc?: number; dataBytes?: number };
  /** Sets other limits on a started sandbox; absent where they are fixed at start (rlimits). */
  setLimits?(limits: SandboxLimits): void;
  /** Kills every process still in the sandbox's cgroup (no-op without one). */
  killAll(): Promise<void>;
  /** Kills what is left and removes the cgroup. */
  release(): Promise<void>;
  /** What could not be enforced, for the sandbox's warnings. */
  warnings: string[];
}

export interface Limiter {
  report(level: IsolationLevel): LimitsReport;
  place(id: string, limits: SandboxLimits, level: IsolationLevel): LimitPlacement;
  /** After the last sandbox: removes what the limiter made outside them. */
  close(): void;
}

const MIB = 1024 * 1024;
const isRoot = () => process.getuid?.() === 0;

function rlimitReport(level: IsolationLevel): LimitsReport {
  const nproc = !isRoot() && level !== 'none';
  return {
    pids: nproc
      ? { mechanism: 'rlimit', detail: 'RLIMIT_NPROC inside the sandbox\'s own user namespace (counted per namespace on Linux 5.14+)' }
      : { mechanism: 'none', detail: isRoot() ? 'no writable cgroup, and RLIMIT_NPROC does not bind uid 0' : 'no writable cgroup, and without a user namespace of its own RLIMIT_NPROC would count every process of this user' },
    memory: { mechanism: 'rlimit', detail: 'RLIMIT_DATA on each process (not a total for the sandbox)' },
  };
}

class CgroupLimiter implements Limiter {
  constructor(private readonly tree: CgroupTree) {}

  report(): LimitsReport {
    const mechanism: LimitMechanism = this.tree.version === 2 ? 'cgroup2' : 'cgroup1';
    const detail = `a cgroup (v${this.tree.version}) per sandbox under ${this.tree.where}`;
    return { pids: { mechanism, detail: `${detail}: pids.max` }, memory: { mechanism, detail: `${detail}: ${this.tree.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'}` } };
  }

  place(id: string, limits: SandboxLimits): LimitPlacement {
    const handle: CgroupHandle = this.tree.create(id, { pids: limits.pids, memoryBytes: limits.memoryMb * MIB });
    const mechanism: LimitMechanism = this.tree.version === 2 ? 'cgroup2' : 'cgroup1';
    return {
      pids: mechanism,
      memory: mechanism,
      procsFiles: handle.procsFiles,
      counters: handle.counters,
      setLimits: (to) => handle.setLimits({ pids: to.pids, memoryBytes: to.memoryMb * MIB }),
      killAll: () => handle.killAll(),
      release: () => handle.remove(),
      warnings: [],
    };
  }

  close(): void {
    this.tree.close();
  }
}

class RlimitLimiter implements Limiter {
  close(): void {}

  report(level: IsolationLevel): LimitsReport {
    return rlimitReport(level);
  }

  place(_id: string, limits: SandboxLimits, level: IsolationLevel): LimitPlacement {
    const report = rlimitReport(level);
    const nproc = report.pids.mechanism === 'rlimit' ? limits.pids : undefined;
    return {
      pids: report.pids.mechanism,
      memory: 'rlimit',
      procsFiles: [],
      rlimits: { dataBytes: limits.memoryMb * MIB, ...(nproc !== undefined ? { nproc } : {}) },
      killAll: async () => undefined,
      release: async () => undefined,
      warnings: nproc === undefined ? [`no process limit for this sandbox: ${report.pids.detail}`] : [],
    };
  }
}

let detected: Limiter | undefined;

/** The limiter for this daemon: cgroups when it may make them, else rlimits. Detected once. */
export function detectLimiter(): Limiter {
  detected ??= limiterFor(detectCgroups(true));
  return detected;
}

/** What a daemon started now would use, changing nothing (for `agentd doctor`). */
export function probeLimits(level: IsolationLevel): LimitsReport {
  return limiterFor(detectCgroups(false)).report(level);
}

const limiterFor = (tree: CgroupTree | null): Limiter => (tree ? new CgroupLimiter(tree) : new RlimitLimiter());
