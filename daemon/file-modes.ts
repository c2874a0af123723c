import { chmod, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Removes the group and other permission bits from everything under `dir` (not `dir`
 * itself); `skip` dirs are tightened but not entered. Symlinks are left alone. Returns
 * how many entries it changed.
 */
export async function tightenTree(dir: string, skip: ReadonlySet<string> = new Set()): Promise<number> {
  let count = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isSymbolicLink()) continue;
    const path = join(dir, entry.name);
    const mode = (await lstat(path).catch(() => undefined))?.mode;
    if (mode !== undefined && (mode & 0o077) !== 0) {
      await chmod(path, mode & 0o7700);
      count++;
    }
    if (entry.isDirectory() && !skip.has(path)) count += await tightenTree(path, skip);
  }
  return count;
}
