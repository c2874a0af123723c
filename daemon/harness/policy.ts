import path from 'node:path';
import picomatch from 'picomatch';
import type { PermissionPolicy } from '../../protocol/index.js';

/** What a session's permission policy says about one tool call. */
export type PolicyVerdict = 'allow' | 'deny' | 'ask';

export interface PolicyCall {
  name: string;
  input: Record<string, unknown>;
}

/** The input a pattern's parenthesised part is matched against, per built-in tool. */
const PRIMARY_INPUT: Record<string, string> = {
  bash: 'command',
  read_file: 'path',
  write_file: 'path',
  edit_file: 'path',
  glob: 'pattern',
  grep: 'pattern',
};

/** Tools whose main input is a path in the workspace. */
const PATH_TOOLS = new Set(['read_file', 'write_file', 'edit_file']);

/** Stands in for `/` while matching, so that picomatch sees no path segments (see `wildcard`). */
const SLASH = '\uE000';

/**
 * A policy pattern is a wildcard over a tool name, a command or a path: `*` matches any
 * characters, `/` and newlines included; `?`, `[abc]`, `[!abc]` and `{a,b}` as in a glob.
 * picomatch reads it with `/` hidden: as a path glob, `*` would stop at `/` and never match
 * a `..` segment, so `deny: ["bash(rm *)"]` would let `rm -rf /../etc` through.
 */
function wildcard(pattern: string): (value: string) => boolean {
  const matches = picomatch(pattern.replaceAll('/', SLASH), { bash: true, dot: true, posix: true, flags: 's' });
  return (value) => matches(value.replaceAll('/', SLASH));
}

/**
 * A path as the file tools resolve it: relative to the workspace, `..` and `.` resolved
 * (absolute when it leads outside). `src/../.git/config` and `/<workspace>/.git/config`
 * are both `.git/config`, so a deny pattern cannot be stepped around by spelling a path
 * another way. Symlinks are not followed here: the tools refuse those that lead out.
 */
function workspacePath(workspace: string, value: string): string {
  const absolute = path.posix.resolve(workspace, value);
  const relative = path.posix.relative(workspace, absolute);
  if (relative === '') return '.';
  return relative === '..' || relative.startsWith('../') ? absolute : relative;
}

function primaryValue(call: PolicyCall, workspace: string): string | undefined {
  const key = PRIMARY_INPUT[call.name];
  const value = key ? call.input[key] : undefined;
  if (typeof value !== 'string') return undefined;
  return PATH_TOOLS.has(call.name) ? workspacePath(workspace, value) : value;
}

/**
 * Patterns are tool names with wildcards (`mcp__memory__*`), optionally with a pattern
 * for the tool's main input in parentheses: `bash(git *)`, `write_file(src/*)`.
 */
export function matches(pattern: string, call: PolicyCall, workspace: string): boolean {
  const m = /^([^()]+)(?:\((.*)\))?$/s.exec(pattern.trim());
  if (!m) return false;
  if (!wildcard(m[1]!)(call.name)) return false;
  if (m[2] === undefined) return true;
  const value = primaryValue(call, workspace);
  return value !== undefined && wildcard(m[2])(value);
}

/** Deny lists win over allow lists; `allow_always` answers join the allow list. */
export function decide(policy: PermissionPolicy | undefined, alwaysAllowed: ReadonlySet<string>, call: PolicyCall, workspace: string): PolicyVerdict {
  const p = policy ?? { default: 'ask' };
  if (p.deny?.some((pattern) => matches(pattern, call, workspace))) return 'deny';
  if (alwaysAllowed.has(call.name) || p.allow?.some((pattern) => matches(pattern, call, workspace))) return 'allow';
  return p.default;
}
