import { readdirSync, readFileSync } from 'node:fs';
import type { ProcessScope } from '../host/protocol.js';

export interface ProcInfo {
  pid: number;
  state: string; // R, S, D, Z, ...
  ppid: number;
  sid: number;
  /** Start time in clock ticks since boot: with the pid, it names one process for good. */
  start: number;
  threads: number;
}

/** One process's entry in /proc, or null when there is none (it exited, or was reaped). */
export function readStat(pid: number): ProcInfo | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses; fields resume after the last ')' (field 3 on).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0]!, ppid: Number(fields[1]), sid: Number(fields[3]), threads: Number(fields[17]), start: Number(fields[19]) };
}

/** Whether a process with this pid exists (maybe another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the process table from /proc. */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readStat(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/** How long killUntilGone waits, once nothing it killed runs, for the dead to be reaped. */
const REAP_MS = 1_000;

/** Which processes were running at a moment: pid → start time. */
export type Snapshot = ReadonlyMap<number, number>;

const readCgroup = (pid: number | 'self') => {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
};

/**
 * The sandbox's processes as the host sees them, and how to be rid of the ones a command
 * started. Never touched: the host itself, the sandbox's pid 1, and what the host runs apart
 * from the shell (the session's MCP servers and their children).
 */
export class SandboxProcesses {
  private readonly ownCgroup: string | null;
  private readonly host = process.pid;

  constructor(private readonly scope: ProcessScope) {
    this.ownCgroup = scope === 'cgroup' ? readCgroup('self') : null;
  }

  /** Live processes of the sandbox other than the host and pid 1. */
  private members(all: ProcInfo[], shellPid: number | null): ProcInfo[] {
    const byPid = new Map(all.map((p) => [p.pid, p]));
    // The host's child whose subtree holds `p` (or undefined when `p` is not below the host).
    const branch = (p: ProcInfo): number | undefined => {
      for (let at: ProcInfo | undefined = p, hops = 0; at && hops < 1000; at = byPid.get(at.ppid), hops++) {
        if (at.ppid === this.host) return at.pid;
      }
      return undefined;
    };
    return all.filter((p) => {
      if (p.pid === this.host || p.pid === 1 || p.state === 'Z') return false;
      const under = branch(p);
      if (under !== undefined && under !== shellPid) return false; // a session server's tree
      switch (this.scope) {
        case 'namespace':
          return true;
        case 'cgroup':
          return readCgroup(p.pid) === this.ownCgroup;
        case 'descendants':
          return under === shellPid || (shellPid !== null && p.sid === shellPid);
      }
    });
  }

  snapshot(): Snapshot {
    return new Map(listProcesses().map((p) => [p.pid, p.start]));
  }

  /** Processes that `since` did not have (by pid and start time): what a command started. */
  startedSince(since: Snapshot, shellPid: number | null): ProcInfo[] {
    return this.members(listProcesses(), shellPid).filter((p) => p.pid !== shellPid && since.get(p.pid) !== p.start);
  }

  /** Every process the shell's commands started, in this call or earlier ones. */
  started(shellPid: number | null): ProcInfo[] {
    return this.members(listProcesses(), shellPid).filter((p) => p.pid !== shellPid);
  }

  /** Tasks (threads included) in the whole sandbox, as a process limit counts them. */
  tasks(): number {
    return listProcesses().reduce((sum, p) => sum + (p.state === 'Z' ? 1 : p.threads), 0);
  }

  /**
   * SIGKILLs what `select` names, rescanning until it names nothing (a process that forks while
   * being killed leaves no child behind) and every process killed has been reaped (a zombie
   * still shows in the next command's `ps`), or `withinMs` passes. Returns how many are left
   * running.
   */
  async killUntilGone(select: () => ProcInfo[], withinMs = 5_000): Promise<number> {
    const deadline = Date.now() + withinMs;
    const killed = new Map<number, number>(); // pid → start time
    const unreaped = () => [...killed].some(([pid, start]) => readStat(pid)?.start === start);
    // A zombie whose parent lives on and never reaps it is not waited for long.
    let reapBy: number | undefined;
    for (;;) {
      const targets = select();
      if (targets.length === 0) reapBy ??= Date.now() + REAP_MS;
      if ((targets.length === 0 && (!unreaped() || Date.now() > reapBy!)) || Date.now() > deadline) return targets.length;
      for (const p of targets) {
        killed.set(p.pid, p.start);
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
