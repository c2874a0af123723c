/**
 * What the harness is handed by the daemon around it, as the harness sees it. The
 * harness imports none of the daemon's services (a layering test holds this): each is
 * the small interface the harness uses, and the daemon wires its own in (daemon/server.ts).
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { PermissionDecision, PermissionPolicy, PermissionQuestion, SessionCreateParams, UsageTotals } from '../../protocol/index.js';
import type { ToolDefinition } from '../../sandbox/types.js';
import type { SessionLog } from '../log/session-log.js';
import type { ApiTool } from './context.js';
import type { RetryPolicy } from './model.js';
import type { PriceTable } from './usage.js';
import type { TreeBudget } from './budget-ledger.js';
import type { ChildOutcome, ChildSpec } from './agent-tool.js';

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

/** What a runner needs from the daemon. */
export interface RunnerDeps {
  log: SessionLog;
  logger: HarnessLogger;
  model(): Promise<Anthropic>;
  delta(sessionId: string, turnId: string, kind: 'text' | 'tool_input', index: number, text: string): void;
  /** Resolves with the first answer from any client; rejects when `signal` aborts. */
  askPermission(question: PermissionQuestion, signal: AbortSignal): Promise<{ decision: PermissionDecision; by: string }>;
  retry: RetryPolicy;
  /** Replaces vault values in everything the runner records (a second line of defence). */
  redactor(): Promise<HarnessRedactor>;
  /** Runs a task on the session's queue, the one session/prompt appends on. */
  serialize<T>(sessionId: string, task: () => Promise<T>): Promise<T>;
  /** The network questions the session's log leaves open (their ids): a stopped daemon's, when a runner wakes. */
  openNetworkQuestions(sessionId: string): Promise<string[]>;
  /** Names this daemon in harness.woke, so a hand-over says where the session went. */
  daemonId: string;
  /** A new session id, for a sub-agent named in the log before it is created. */
  newSessionId(): string;
  /**
   * Creates the sub-agent session unless it exists, runs it, and resolves with how its
   * turn ended (at once when the log says it already did). Aborting `signal` interrupts it.
   */
  runChild(spec: ChildSpec, signal: AbortSignal): Promise<ChildOutcome>;
  /** The budget of the session's tree (it and its sub-agents), which every model call reserves from. */
  budget: TreeBudget;
}

export interface RunnerConfig {
  sessionId: string;
  /** The session's workspace: path patterns of the permission policy are matched relative to it. */
  workspace: string;
  model: string;
  maxTokens: number;
  system: string;
  permissions?: PermissionPolicy;
  /** Context size (estimated tokens) above which older turns are compacted. */
  contextBudget: number;
  tools: readonly ApiTool[];
  usage: UsageTotals;
  prices: PriceTable;
  /** Set for a sub-agent: its questions go to the parent's controllers too. */
  parentSessionId?: string;
}
