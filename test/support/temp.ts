/**
 * Temp dirs for one test process, removed when it exits (passed or failed), so that a
 * test file leaves nothing in the temp dir. scripts/run-tests.mjs fails the run when
 * anything is left there anyway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Cleanup bookkeeping only: the dirs this process made and has not removed yet. */
const made = new Set<string>();

function removeAll(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}

/** A new dir under the temp dir (`<prefix>XXXXXX`), removed at exit at the latest. */
export function tempDir(prefix: string): string {
  if (made.size === 0) process.once('exit', removeAll);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}
