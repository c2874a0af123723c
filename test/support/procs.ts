/** The processes this user may read, as /proc shows them: for tests that look for what must not be in argv or env. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessView {
  pid: number;
  /** The arguments, joined by spaces. */
  cmdline: string;
  /** The raw environment (NUL-separated). */
  environ: string;
}

export function processes(): ProcessView[] {
  const found: ProcessView[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
      found.push({ pid: Number(pid), cmdline, environ: readFileSync(`/proc/${pid}/environ`, 'latin1') });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}
