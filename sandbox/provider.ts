// The sandbox provider's interface: the one file the rest of agentd imports from sandbox/.
import type { IsolationLevel, IsolationReport } from './isolation/probe.js';
import { cachedIsolationReport, provisionLocal } from './local-sandbox.js';
import { builtinTools } from './tools/index.js';

export type { Check, IsolationLevel, IsolationReport } from './isolation/probe.js';
export { probeIsolation } from './isolation/probe.js';

export interface SandboxSpec {
  sessionId: string; // naming and logging only
  workspace: string; // absolute directory, read-write inside; persists across sandboxes
  isolation?: IsolationLevel | 'auto'; // 'auto' (default) = strongest available; never silently weaker than requested
  network?: 'none'; // off by default; the credential proxy (later) adds a path
  envAllowlist?: string[]; // names copied from the provider's environment (default PATH, LANG, LC_ALL, TERM, TZ)
  env?: Record<string, string>; // explicit values set inside
  mcpServers?: { name: string; command: string; args?: string[]; env?: Record<string, string> }[];
  binds?: { path: string; readOnly: boolean }[]; // extra paths to expose (bwrap only)
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

export interface Sandbox {
  readonly id: string;
  readonly isolation: IsolationLevel;
  readonly warnings: string[]; // e.g. the loud warning when isolation is 'none'
  tools(): Promise<ToolDefinition[]>; // built-ins + mcp__<server>__<tool>, cached
  execute(name: string, input: Record<string, unknown>, options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<ToolResult>;
  close(): Promise<void>;
  readonly ended: Promise<{ reason: string }>; // settles when the sandbox dies or is closed
}

export interface SandboxProvider {
  provision(spec: SandboxSpec): Promise<Sandbox>;
}

/** The built-in tools, known before any sandbox exists (the harness offers them to the model up front). */
export const BUILTIN_TOOLS: readonly ToolDefinition[] = builtinTools.map(({ name, description, inputSchema }) => ({ name, description, inputSchema }));

export interface LocalProviderOptions {
  /** Replaces the machine probe (a test seam, and for a doctor-checked report). */
  isolationReport?: Promise<IsolationReport>;
  /** The file-creation mask tools run with (default: this process's), e.g. the user's when the caller tightened its own. */
  toolUmask?: number;
}

/** Sandboxes as local process trees: bubblewrap, else namespaces, else a plain process (with a warning). */
export function createLocalProvider(options: LocalProviderOptions = {}): SandboxProvider {
  const available = options.isolationReport ?? cachedIsolationReport();
  return { provision: (spec) => provisionLocal(spec, available, options.toolUmask) };
}
