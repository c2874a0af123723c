import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The first executable named `binary` on the search path, or null. */
export function findExecutable(binary: string, searchPath = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string | null {
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}
