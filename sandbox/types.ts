/**
 * The sandbox provider's interface: the one file the rest of agentd imports from sandbox/
 * (the composition root also imports the factory, provider.ts). It imports nothing of the
 * sandbox but the host's wire schemas, so sandbox/ has no import cycle through it.
 */
import type { Server } from 'node:net';
import type { HostErrorKind, ToolContent } from './host/protocol.js';

export type { ToolContent } from './host/protocol.js';

export type IsolationLevel = 'bwrap' | 'namespaces' | 'none';

/** Strongest first. */
export const ISOLATION_LEVELS: readonly IsolationLevel[] = ['bwrap', 'namespaces', 'none'];

/** Whether `level` isolates at least as much as `floor`. */
export function atLeast(level: IsolationLevel, floor: IsolationLevel): boolean {
  return ISOLATION_LEVELS.indexOf(level) <= ISOLATION_LEVELS.indexOf(floor);
}

export interface Check {
  ok: boolean;
  detail: string;
}

export interface IsolationReport {
  best: IsolationLevel;
  levels: Record<IsolationLevel, Check>;
  userNamespaces: Check;
  netNamespaces: Check;
  nodePty: Check;
  ripgrep: Check;
}

export interface ContainmentReport {
  ok: boolean;
  /** "uid 1000 inside (uid 0 outside)". */
  uid: string;
  capabilities: string;
  seccomp: string;
  /** Hidden paths and kernel files, and whether the probe could reach them. */
  masked: string;
}

export interface SandboxLimits {
  /** Tasks (processes and threads) in the whole sandbox. */
  pids: number;
  /** Memory of the whole sandbox (cgroup), or of each process (rlimit), in MiB. */
  memoryMb: number;
}

export type LimitMechanism = 'cgroup2' | 'cgroup1' | 'rlimit' | 'none';

export interface LimitsReport {
  pids: { mechanism: LimitMechanism; detail: string };
  memory: { mechanism: LimitMechanism; detail: string };
}

export interface SandboxSpec {
  sessionId: string; // naming and logging only
  workspace: string; // absolute directory, read-write inside; persists across sandboxes
  isolation?: IsolationLevel | 'auto'; // 'auto' (default) = strongest available; never silently weaker than requested
  envAllowlist?: string[]; // names copied from the provider's environment (default PATH, LANG, LC_ALL, TERM, TZ)
  env?: Record<string, string>; // explicit values set inside
  mcpServers?: { name: string; command: string; args?: string[]; env?: Record<string, string> }[];
  binds?: { path: string; readOnly: boolean }[]; // extra paths to expose
  /** Paths never visible inside (the daemon's data dir, sockets), whatever the workspace holds. */
  hide?: string[];
  /** The weakest isolation allowed: 'auto' picks the strongest available at or above it, anything below is refused. */
  minimumIsolation?: IsolationLevel;
  /** Process and memory limits for the whole sandbox (see limits/index.ts for how they are held). */
  limits?: SandboxLimits;
  /**
   * The session's proxy. The host opens its port on the sandbox's loopback (AGENTD_PROXY,
   * HTTP(S)_PROXY point there) and hands the listening socket over; `serve` accepts the
   * sandbox's connections on it. The sandbox's network stays otherwise off.
   */
  proxy?: { serve(listener: Server): void };
  /**
   * A CA certificate (PEM) the sandbox's TLS clients trust besides the system's: the proxy's,
   * which it signs with to add a credential on an HTTPS host the credential is bound to.
   */
  proxyCa?: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>; // a JSON Schema object
}

/** How a tool call failed: the host's kinds, and the provider's own when the sandbox died under it. */
export type ToolErrorKind = HostErrorKind | 'sandbox_lost';

export interface ToolResult {
  content: ToolContent[];
  isError: boolean;
  errorKind?: ToolErrorKind;
  durationMs: number;
}

/** The limits a sandbox runs under, and how each is held ('cgroup1', 'cgroup2', 'rlimit', 'none'). */
export interface AppliedLimits {
  pids: number;
  memoryMb: number;
  pidsMechanism: string;
  memoryMechanism: string;
}

export interface Sandbox {
  readonly id: string;
  readonly isolation: IsolationLevel;
  readonly warnings: string[]; // e.g. the loud warning when isolation is 'none'
  readonly limits: AppliedLimits | null;
  /** Whether it came from the warm pool (started before it was bound to this workspace). */
  readonly pooled: boolean;
  /** Running, its connection open: false once it died, maybe before `ended` settles. */
  readonly alive: boolean;
  tools(): Promise<ToolDefinition[]>; // built-ins + mcp__<server>__<tool>, cached
  execute(name: string, input: Record<string, unknown>, options?: ExecuteOptions): Promise<ToolResult>;
  close(): Promise<void>;
  readonly ended: Promise<{ reason: string }>; // settles when the sandbox dies or is closed
}

/**
 * How a call may be cut short: `signal` (interrupted), `timeoutMs` (timeout), and `hungAfterMs`:
 * how long the host may stay silent before it is taken for hung and killed (sandbox_lost; by
 * default a built-in tool's own time limit and a grace).
 */
export interface ExecuteOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  hungAfterMs?: number;
}

/** The warm pool of started, not yet bound sandboxes, for daemon/status and doctor. */
export interface PoolStatus {
  /** How many the pool keeps ready (the configuration). */
  size: number;
  /** Started and waiting to be bound. */
  ready: number;
  /** Being started to refill it. */
  starting: number;
  /** Sandboxes provisioned from the pool, and cold (the pool was empty or could not serve the request). */
  served: number;
  cold: number;
  /** Pooled hosts that died while waiting, and were replaced. */
  replaced: number;
  /** Why this daemon keeps no pool (e.g. not root), when it keeps none. */
  disabled?: string;
}

export interface SandboxProvider {
  /** The built-in tools, known before any sandbox exists (the harness offers them to the model up front). */
  readonly builtinTools: readonly ToolDefinition[];
  provision(spec: SandboxSpec): Promise<Sandbox>;
  /** The warm pool, when the provider keeps one. */
  pool?(): PoolStatus;
  /** When every sandbox is closed (the daemon stops): releases what the provider holds outside them. */
  close?(): Promise<void>;
}
