/**
 * What crosses the boundary between the provider (outside) and the tool host (inside), as
 * schemas both sides parse with: the host's configuration, its tool results, its start-up
 * timings. zod/mini, not classic zod: the host loads this at start-up, where classic zod
 * alone costs about as much as node's own boot.
 */
import * as z from 'zod/mini';

/** The provider binds a started host to its session with this request (MCP's own methods aside). */
export const CONFIGURE_METHOD = 'agentd/configure';
/** Loads what the first command needs (the shell's native module) ahead of it: the pool's hosts, before they count as ready. */
export const WARM_METHOD = 'agentd/warm';

/** Where the sandbox's own limit counters are mounted (read-only) inside. */
export const LIMITS_DIR_INSIDE = '/run/agentd/limits';
/**
 * The loopback port the proxy appears on in a sandbox with its own network namespace:
 * fixed, so git remotes written into the workspace keep working in the next sandbox.
 */
export const PROXY_PORT_INSIDE = 7890;

export const SessionServerSpec = z.object({
  name: z.string(),
  command: z.string(),
  args: z.optional(z.array(z.string())),
  env: z.optional(z.record(z.string(), z.string())),
});
export type SessionServerSpec = z.infer<typeof SessionServerSpec>;

/**
 * Which processes belong to the sandbox, for killing what a call started: every process the
 * host can see (its own pid namespace), the members of its own cgroup, or (with neither) its
 * descendants and their sessions.
 */
export const ProcessScope = z.enum(['namespace', 'cgroup', 'descendants']);
export type ProcessScope = z.infer<typeof ProcessScope>;

export const HostLimits = z.object({
  pids: z.number(),
  memoryMb: z.number(),
  /** How the limits are held ('cgroup1', 'cgroup2', 'rlimit', 'none'), for messages. */
  pidsMechanism: z.string(),
  memoryMechanism: z.string(),
  /** Counter files as the host sees them: `max N` (refused forks) and `oom_kill N`. */
  pidsEvents: z.optional(z.string()),
  memoryEvents: z.optional(z.string()),
});
export type HostLimits = z.infer<typeof HostLimits>;

export const HostConfig = z.object({
  /** The workspace as the host sees it (the same path as outside). */
  workspace: z.string(),
  /** The environment of the shell and the session's servers (the host's own is only PATH). */
  env: z.record(z.string(), z.string()),
  mcpServers: z.array(SessionServerSpec),
  /** Where the host keeps its own files; removed by the provider when the sandbox ends. */
  scratch: z.string(),
  /** Open 127.0.0.1:port (0: any free port) inside and hand it to the daemon's proxy (listener-handover.ts); `ca`: the proxy's, to trust. */
  proxy: z.optional(z.object({ port: z.number(), ca: z.optional(z.string()) })),
  processScope: ProcessScope,
  limits: z.optional(HostLimits),
  /** The file-creation mask for everything the tools create (the user's, not the daemon's tighter one). */
  umask: z.optional(z.number()),
});
export type HostConfig = z.infer<typeof HostConfig>;

/** Milliseconds since the host process started (performance.timeOrigin, also sent). */
export const HostTimings = z.object({
  timeOrigin: z.number(),
  /** node's own bootstrap done (before any of our code). */
  bootstrapped: z.number(),
  /** Our bundle loaded and evaluated. */
  loaded: z.number(),
  initialized: z.number(),
  configured: z.number(),
});
export type HostTimings = z.infer<typeof HostTimings>;

export const ConfigureResult = z.object({ timings: HostTimings });

export const ToolContent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image'), data: z.string(), mimeType: z.string() }),
]);
export type ToolContent = z.infer<typeof ToolContent>;

/** Why a call the host answered failed: the tool said so, its own time limit, or an interrupt. */
export const HostErrorKind = z.enum(['tool_error', 'timeout', 'interrupted']);
export type HostErrorKind = z.infer<typeof HostErrorKind>;

/** The host's answer to tools/call: MCP's CallToolResult with the content already in the provider's shape. */
export const HostToolResult = z.object({
  content: z.array(ToolContent),
  isError: z.boolean(),
  errorKind: z.optional(HostErrorKind),
  /** The host exits after this answer: its sandbox cannot run commands any more (see host/main.ts). */
  endsSandbox: z.optional(z.literal(true)),
});
export type HostToolResult = z.infer<typeof HostToolResult>;
