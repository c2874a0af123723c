import { opendir } from 'node:fs/promises';
import path from 'node:path';

const MAX_ENTRIES = 200_000;

/** Turns a glob (`**`, `*`, `?`, `{a,b}`, `[...]`) into a RegExp over `/`-separated relative paths. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        out += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '{') {
      const close = glob.indexOf('}', i);
      if (close === -1) {
        out += '\\{';
        continue;
      }
      const alternatives = glob.slice(i + 1, close).split(',').map((alt) => globToRegExp(alt).source.slice(1, -1));
      out += `(?:${alternatives.join('|')})`;
      i = close;
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body}]`;
      i = close;
    } else {
      out += c.replace(/[.+^$()|\\\]]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
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
