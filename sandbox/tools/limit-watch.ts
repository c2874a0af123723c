import { readFileSync } from 'node:fs';
import type { HostLimits } from '../host/config.js';
import type { SandboxProcesses } from './procs.js';

export interface LimitState {
  /** Forks refused at the process limit so far (a cgroup counts them), or null. */
  refusedForks: number | null;
  /** Processes the kernel killed for memory so far (cgroup), or null. */
  oomKills: number | null;
  /** Tasks in the sandbox now. */
  tasks: number;
}

function counter(file: string | undefined, key: string): number | null {
  if (!file) return null;
  try {
    const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Tells whether the sandbox ran into its limits, so the model reads which one rather than a
 * bare "fork: Resource temporarily unavailable" or "Killed". With a cgroup its counters say
 * exactly; with RLIMIT_NPROC alone, a sandbox within two tasks of the cap is at it.
 */
export class LimitWatch {
  constructor(
    readonly limits: HostLimits,
    private readonly processes: SandboxProcesses,
  ) {}

  read(): LimitState {
    return {
      refusedForks: counter(this.limits.pidsEvents, 'max'),
      oomKills: counter(this.limits.memoryEvents, 'oom_kill'),
      tasks: this.limits.pidsEvents ? 0 : this.processes.tasks(),
    };
  }

  /** Whether forks were refused between `from` and `now` (or, without a counter, the sandbox is at its cap now). */
  pidsReached(from: LimitState, now: LimitState): boolean {
    if (from.refusedForks !== null && now.refusedForks !== null) return now.refusedForks > from.refusedForks;
    return this.limits.pidsMechanism === 'rlimit' && now.tasks >= this.limits.pids - 2;
  }

  /** Processes killed for memory between `from` and now. */
  oomKilled(from: LimitState, now: LimitState): number {
    return from.oomKills !== null && now.oomKills !== null ? now.oomKills - from.oomKills : 0;
  }
}
