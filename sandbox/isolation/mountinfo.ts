import { readFileSync } from 'node:fs';

export interface MountEntry {
  point: string;
  /** Per-mount options (ro, nosuid, noexec, ...). */
  options: string[];
  fstype: string;
  superOptions: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** This process's mount table, from /proc/self/mountinfo. */
export function mountTable(): MountEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [before, after = ''] = line.split(' - ');
      const fields = before!.split(' ');
      const [fstype = '', , superOptions = ''] = after.split(' ');
      return { point: unescape(fields[4]!), options: (fields[5] ?? '').split(','), fstype, superOptions: superOptions.split(',') };
    });
}

/** The mount a path lives on: the last-mounted entry whose mount point contains it. */
export function mountOf(table: MountEntry[], path: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const entry of table) {
    const prefix = entry.point === '/' ? '/' : `${entry.point}/`;
    if (path === entry.point || path.startsWith(prefix)) {
      if (!found || entry.point.length >= found.point.length) found = entry;
    }
  }
  return found;
}
