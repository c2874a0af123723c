import { readFileSync } from 'node:fs';
import type { HostLimits } from '../host/protocol.js';
import type { SandboxProcesses } from './procs.js';

export interface LimitState {
  /** Forks refused at the process limit so far (a cgroup counts them), or null. */
  refusedForks: number | null;
  /** Processes the kernel killed for memory so far (cgroup), or null. */
  oomKills: number | null;
  /** Tasks in the sandbox now. */
  tasks: number;
}

/** The share of its cap a sandbox without a cgroup counter is taken to be at its process limit. */
const NEAR = 0.75;

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
 * exactly. With RLIMIT_NPROC alone nothing counts refused forks, and a fork bomb at the cap
 * does not sit there (its processes exit and back off for seconds between retries): a sandbox
 * seen using three quarters of its cap is taken to be at it, and the message says "near".
 */
export class LimitWatch {
  constructor(
    readonly limits: HostLimits,
    private readonly processes: SandboxProcesses,
  ) {}

  async read(): Promise<LimitState> {
    return {
      refusedForks: counter(this.limits.pidsEvents, 'max'),
      oomKills: counter(this.limits.memoryEvents, 'oom_kill'),
      tasks: this.limits.pidsEvents || this.limits.pidsMechanism !== 'rlimit' ? 0 : await this.peakTasks(),
    };
  }

  /**
   * Without a counter: the most tasks seen in a short burst of samples. Processes at the cap come
   * and go (a fork bomb's die as fast as they fork), so one look can miss it; a sandbox under
   * half its cap is looked at once.
   */
  private async peakTasks(): Promise<number> {
    let peak = this.processes.tasks();
    for (let i = 0; i < 10 && peak >= this.limits.pids / 2 && peak < NEAR * this.limits.pids; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      peak = Math.max(peak, this.processes.tasks());
    }
    return peak;
  }

  /**
   * Whether the sandbox ran into its process limit between `from` and `now` (without a counter:
   * whether it is near it now), said for the model; null when it did not.
   */
  pidsReached(from: LimitState, now: LimitState): string | null {
    const cap = `process limit (${this.limits.pids} processes and threads)`;
    if (from.refusedForks !== null && now.refusedForks !== null) return now.refusedForks > from.refusedForks ? `reached its ${cap}` : null;
    if (this.limits.pidsMechanism === 'rlimit' && now.tasks >= NEAR * this.limits.pids) return `was near its ${cap}, with ${now.tasks} in use`;
    return null;
  }

  /** Processes killed for memory between `from` and now. */
  oomKilled(from: LimitState, now: LimitState): number {
    return from.oomKills !== null && now.oomKills !== null ? now.oomKills - from.oomKills : 0;
  }
}
