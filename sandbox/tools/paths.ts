import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ToolFailure } from './define.js';

function inside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves a model-supplied path to an absolute path inside the workspace, refusing `..`,
 * absolute paths outside it and symlinks that lead out (for a path that does not exist yet,
 * its nearest existing ancestor is checked instead). Synchronous: a few syscalls, cheaper than
 * the thread-pool round trips of the async API.
 */
export function resolveInWorkspace(workspace: string, requested: string): string {
  if (typeof requested !== 'string' || requested.length === 0) throw new ToolFailure('path is empty');
  if (requested.includes('\0')) throw new ToolFailure('path contains a NUL byte');
  const lexical = path.resolve(workspace, requested);
  if (!inside(workspace, lexical)) {
    throw new ToolFailure(`path ${JSON.stringify(requested)} is outside the workspace (${workspace}); access refused`);
  }
  try {
    // Fast path: the path exists; its real path must be inside.
    const real = realpathSync.native(lexical);
    if (!inside(workspace, real)) {
      throw new ToolFailure(`path ${JSON.stringify(requested)} resolves through a symlink to ${real}, outside the workspace; access refused`);
    }
    return real;
  } catch (error) {
    if (error instanceof ToolFailure) throw error;
  }
  let wanted = lexical;
  let probe = lexical;
  for (let hops = 0; hops < 200; hops++) {
    if (exists(probe)) {
      let real: string;
      try {
        real = realpathSync.native(probe);
      } catch {
        // A dangling symlink: follow its target lexically so writing through it cannot escape.
        const target = path.resolve(path.dirname(probe), readlinkSync(probe));
        if (!inside(workspace, target)) {
          throw new ToolFailure(`path ${JSON.stringify(requested)} is a symlink that leads outside the workspace; access refused`);
        }
        wanted = path.join(target, path.relative(probe, wanted));
        probe = wanted;
        continue;
      }
      if (!inside(workspace, real)) {
        throw new ToolFailure(`path ${JSON.stringify(requested)} resolves through a symlink to ${real}, outside the workspace; access refused`);
      }
      return path.join(real, path.relative(probe, wanted));
    }
    const parent = path.dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  throw new ToolFailure(`path ${JSON.stringify(requested)} cannot be resolved inside the workspace`);
}

export function displayPath(workspace: string, absolute: string): string {
  const rel = path.relative(workspace, absolute);
  return rel === '' ? '.' : rel;
}
