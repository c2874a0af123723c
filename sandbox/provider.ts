// The sandbox provider's interface: the one file the rest of agentd imports from sandbox/.
import { probeLevel, type Check, type IsolationLevel, type IsolationReport } from './isolation/probe.js';
import { detectLimiter, type Limiter, type SandboxLimits } from './limits/index.js';
import { provisionLocal } from './local-sandbox.js';
import { builtinTools } from './tools/index.js';

export type { Check, IsolationLevel, IsolationReport } from './isolation/probe.js';
export { atLeast, ISOLATION_LEVELS, probeIsolation } from './isolation/probe.js';
export { probeContainment, type ContainmentReport } from './isolation/containment.js';
export { probeLimits, type LimitsReport, type SandboxLimits } from './limits/index.js';

export interface SandboxSpec {
  sessionId: string; // naming and logging only
  workspace: string; // absolute directory, read-write inside; persists across sandboxes
  isolation?: IsolationLevel | 'auto'; // 'auto' (default) = strongest available; never silently weaker than requested
  network?: 'none'; // off by default; the credential proxy adds a path
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
   * The credential proxy's unix socket. Inside, the host serves it on a loopback port
   * and sets AGENTD_PROXY to that base URL; the sandbox's network stays otherwise off.
   */
  proxySocket?: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>; // a JSON Schema object
}

export type ToolContent = { type: 'text'; text: string } | { type: 'image'; data: string; mimeType: string };
export type ToolErrorKind = 'sandbox_lost' | 'interrupted' | 'timeout' | 'tool_error';

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
  tools(): Promise<ToolDefinition[]>; // built-ins + mcp__<server>__<tool>, cached
  execute(name: string, input: Record<string, unknown>, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<ToolResult>;
  close(): Promise<void>;
  readonly ended: Promise<{ reason: string }>; // settles when the sandbox dies or is closed
}

export interface SandboxProvider {
  provision(spec: SandboxSpec): Promise<Sandbox>;
  /** When every sandbox is closed (the daemon stops): releases what the provider holds outside them. */
  close?(): Promise<void>;
}

/** The built-in tools, known before any sandbox exists (the harness offers them to the model up front). */
export const BUILTIN_TOOLS: readonly ToolDefinition[] = builtinTools.map(({ name, description, inputSchema }) => ({ name, description, inputSchema }));

const probed = new Map<IsolationLevel, Promise<Check>>();

/** Each level is probed (by starting a real sandbox) once per process, when first needed. */
function probeOnce(level: IsolationLevel): Promise<Check> {
  let check = probed.get(level);
  if (!check) probed.set(level, (check = probeLevel(level)));
  return check;
}

export interface LocalProviderOptions {
  /** Replaces the machine probe (a test seam, and for a doctor-checked report). */
  isolationReport?: Promise<IsolationReport>;
  /** The file-creation mask tools run with (default: this process's), e.g. the user's when the caller tightened its own. */
  toolUmask?: number;
  /** How sandboxes are held to their limits (default: detected, see limits/index.ts). */
  limiter?: Limiter;
}

/**
 * Sandboxes as local process trees: bubblewrap, else namespaces, else a plain process (with a
 * warning), never below `spec.minimumIsolation`.
 */
export function createLocalProvider(options: LocalProviderOptions = {}): SandboxProvider {
  const { isolationReport } = options;
  const available = isolationReport ? async (level: IsolationLevel) => (await isolationReport).levels[level] : probeOnce;
  let limiter = options.limiter;
  return {
    provision: (spec) => provisionLocal(spec, available, (limiter ??= detectLimiter()), options.toolUmask),
    close: async () => limiter?.close(),
  };
}
