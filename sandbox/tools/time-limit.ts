/** bash's time limit when a call names none, and the most a call may name. */
export const BASH_DEFAULT_TIMEOUT_MS = 120_000;
export const BASH_MAX_TIMEOUT_MS = 600_000;
/** The file tools (read, write, edit, glob, grep): they never wait on anything but the disk. */
const FILE_TOOL_LIMIT_MS = 120_000;
const FILE_TOOLS = new Set(['read_file', 'write_file', 'edit_file', 'glob', 'grep']);

/**
 * The longest a built-in tool's call may run inside the host by the tool's own rules: bash its
 * timeout_ms, a file tool two minutes. The caller of a host treats one that stays silent well
 * past this as hung (host-process.ts). null for the tools of the session's MCP servers: they
 * may take as long as they take (an interrupt ends them), so no silence proves a hang.
 */
export function callTimeLimitMs(name: string, input: Record<string, unknown>): number | null {
  if (name === 'bash') return typeof input.timeout_ms === 'number' ? Math.min(input.timeout_ms, BASH_MAX_TIMEOUT_MS) : BASH_DEFAULT_TIMEOUT_MS;
  return FILE_TOOLS.has(name) ? FILE_TOOL_LIMIT_MS : null;
}
