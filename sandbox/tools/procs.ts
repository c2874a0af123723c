import { readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  state: string; // R, S, D, Z, ...
  ppid: number;
  pgid: number;
  sid: number;
}

/** Reads the process table from /proc (pid, parent, process group, session). */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name may contain spaces and parentheses; fields resume after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), state: fields[0]!, ppid: Number(fields[1]), pgid: Number(fields[2]), sid: Number(fields[3]) });
    } catch {
      // The process exited while we were reading.
    }
  }
  return out;
}

/** Live (non-zombie) processes of the session led by `sid`, other than its leader. */
export function sessionMembers(sid: number): ProcInfo[] {
  return listProcesses().filter((p) => p.sid === sid && p.pid !== sid && p.state !== 'Z');
}

/**
 * Kills the session's members that `spare` does not name, rescanning until none is left (or two
 * seconds pass): a process that forks while being killed cannot leave a child behind, and the
 * caller does not go on while a killed process is still running.
 */
export async function killSessionMembers(sid: number, spare: ReadonlySet<number> = new Set()): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const targets = sessionMembers(sid).filter((p) => !spare.has(p.pid));
    if (targets.length === 0 || Date.now() > deadline) return;
    killProcesses(targets, sid);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** SIGKILLs each process and its process group (unless it is `sparePgid`), ignoring ones already gone. */
export function killProcesses(procs: ProcInfo[], sparePgid: number): void {
  const groups = new Set(procs.map((p) => p.pgid).filter((g) => g !== sparePgid && g > 1));
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
