import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { processAlive } from './tools/procs.js';

/**
 * What sandboxes make in the temp dir (the scratch of a plain process, the staging dir of the
 * namespaces level and of its probe) carries the pid of the process that made it, so that what
 * a process killed with -9 left behind is swept by the next provider (a bwrap sandbox makes
 * nothing outside itself).
 */
const OWNED = /^agentd-(?:sandbox|probe)-(\d+)-/;

export function ownTempDir(kind: 'sandbox' | 'probe'): string {
  return mkdtempSync(path.join(tmpdir(), `agentd-${kind}-${process.pid}-`));
}

/** Removes the dirs of ownTempDir made by processes (of this user) that are gone. */
export function sweepTempDirs(): void {
  const root = tmpdir();
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = OWNED.exec(name)?.[1];
    if (!pid || processAlive(Number(pid))) continue;
    const dir = path.join(root, name);
    try {
      if (lstatSync(dir).uid !== process.getuid?.()) continue;
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Gone meanwhile, or not ours to remove.
    }
  }
}
