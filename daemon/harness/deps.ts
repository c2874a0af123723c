/**
 * What the harness is handed by the daemon around it, as the harness sees it. The
 * harness imports none of the daemon's services (a layering test holds this): each is
 * the small interface the harness uses, and the daemon wires its own in (daemon/server.ts).
 */
import type { SessionCreateParams, UsageTotals } from '../../protocol/index.js';
import type { ToolDefinition } from '../../sandbox/types.js';

/** Where the harness writes diagnostics (the daemon's log file). */
export interface HarnessLogger {
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void;
}

/** Replaces secret values in everything the harness records: a second line of defence. */
export interface HarnessRedactor {
  /** No secrets to look for: the value passes unchanged. */
  readonly empty: boolean;
  value<T>(input: T): T;
}

/** What the harness needs of a session's record (the daemon keeps more). */
export interface HarnessSession {
  sessionId: string;
  workspace: string;
  title?: string;
  model?: string;
  usage: UsageTotals;
  /** Set for a sub-agent: the session that started it, and that session's `agent` call. */
  parent?: { sessionId: string; toolUseId: string };
  config: Pick<SessionCreateParams, 'system' | 'tools' | 'mcpServers' | 'credentials' | 'repos' | 'sandbox' | 'permissions' | 'context' | 'budget'>;
  /** The tools of the session's own MCP servers, listed once and kept in its metadata by the harness. */
  toolCatalog?: ToolDefinition[];
}
