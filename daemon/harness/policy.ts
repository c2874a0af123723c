/** What a session's permission policy says about one tool call. */
export type PolicyVerdict = 'allow' | 'deny' | 'ask';

export interface PermissionPolicy {
  default: 'ask' | 'allow' | 'deny';
  allow?: string[];
  deny?: string[];
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

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 's');
}

/**
 * Patterns are tool names with `*` wildcards (`mcp__memory__*`), optionally with a
 * pattern for the tool's main input in parentheses: `bash(git *)`, `write_file(src/*)`.
 */
export function matches(pattern: string, name: string, input: Record<string, unknown>): boolean {
  const m = /^([^()]+)(?:\((.*)\))?$/s.exec(pattern.trim());
  if (!m) return false;
  if (!globToRegExp(m[1]!).test(name)) return false;
  if (m[2] === undefined) return true;
  const key = PRIMARY_INPUT[name];
  const value = key ? input[key] : undefined;
  return typeof value === 'string' && globToRegExp(m[2]).test(value);
}

/** Deny lists win over allow lists; `allow_always` answers join the allow list. */
export function decide(
  policy: PermissionPolicy | undefined,
  alwaysAllowed: ReadonlySet<string>,
  name: string,
  input: Record<string, unknown>,
): PolicyVerdict {
  const p = policy ?? { default: 'ask' };
  if (p.deny?.some((pattern) => matches(pattern, name, input))) return 'deny';
  if (alwaysAllowed.has(name) || p.allow?.some((pattern) => matches(pattern, name, input))) return 'allow';
  return p.default;
}
