/** bash's time limit when a call names none, and the most a call may name. */
export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
export const BASH_MAX_TIMEOUT_MS = 600_000;
/** The file tools (read, write, edit, glob, grep): they never wait on anything but the disk. */
const FILE_TOOL_LIMIT_MS = 120_000;
const FILE_TOOLS = new Set(['read_file', 'write_file', 'edit_file', 'glob', 'grep']);

/**
 * The longest a call may run inside the host by its tool's own rules: bash its timeout_ms; a
 * file tool two minutes; a tool of the session's MCP servers as long as the longest bash. The
 * caller of a host treats one that stays silent well past this as hung (host-process.ts).
 */
export function callTimeLimitMs(name: string, input: Record<string, unknown>): number {
  if (name === 'bash') return typeof input.timeout_ms === 'number' ? Math.min(input.timeout_ms, BASH_MAX_TIMEOUT_MS) : BASH_DEFAULT_TIMEOUT_MS;
  return FILE_TOOLS.has(name) ? FILE_TOOL_LIMIT_MS : BASH_MAX_TIMEOUT_MS;
}
