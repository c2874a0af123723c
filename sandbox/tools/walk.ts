import { opendir } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';

const MAX_ENTRIES = 200_000;

/**
 * A matcher for a glob (`**`, `*`, `?`, `{a,b}`, `[...]`) over `/`-separated paths relative
 * to the workspace. Dotfiles match like any other file (`*.png` finds `.hidden.png`). With
 * `basename`, a glob without `/` is matched against the file's name, wherever it is.
 */
export function globMatcher(glob: string, options: { basename?: boolean } = {}): (relPath: string) => boolean {
  // posix: `[!a]` negates a class, as in a shell.
  const matches = picomatch(glob, { dot: true, posix: true });
  return options.basename && !glob.includes('/') ? (relPath) => matches(path.posix.basename(relPath)) : matches;
}

/**
 * Yields regular files under `root` as paths relative to it, skipping `.git` and never
 * following symlinked directories (so a walk cannot leave the workspace or loop).
 */
export async function* walkFiles(root: string, signal?: AbortSignal): AsyncGenerator<string> {
  const pending = [''];
  let seen = 0;
  while (pending.length > 0) {
    const rel = pending.pop()!;
    let dir;
    try {
      dir = await opendir(path.join(root, rel));
    } catch {
      continue;
    }
    const children: string[] = [];
    for await (const entry of dir) {
      if (signal?.aborted || ++seen > MAX_ENTRIES) return;
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== '.git') children.push(childRel);
      } else if (entry.isFile()) {
        yield childRel;
      }
    }
    pending.push(...children.sort().reverse());
  }
}
