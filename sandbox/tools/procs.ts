import { readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
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
      out.push({ pid: Number(name), ppid: Number(fields[1]), pgid: Number(fields[2]), sid: Number(fields[3]) });
    } catch {
      // The process exited while we were reading.
    }
  }
  return out;
}

export function sessionMembers(sid: number): ProcInfo[] {
  return listProcesses().filter((p) => p.sid === sid && p.pid !== sid);
}

/** SIGKILLs each process and its process group, ignoring ones already gone. */
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
