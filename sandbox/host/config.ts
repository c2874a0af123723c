import type { SessionServerSpec } from './session-servers.js';

/** The provider hands the host its configuration in this environment variable (kept out of argv). */
export const HOST_CONFIG_ENV = 'AGENTD_SANDBOX_CONFIG';

/**
 * Which processes belong to the sandbox, for killing what a call started: every process the
 * host can see (its own pid namespace), the members of its own cgroup, or (with neither) its
 * descendants and their sessions.
 */
export type ProcessScope = 'namespace' | 'cgroup' | 'descendants';

export interface HostLimits {
  pids: number;
  memoryMb: number;
  /** How the limits are held ('cgroup1', 'cgroup2', 'rlimit', 'none'), for messages. */
  pidsMechanism: string;
  memoryMechanism: string;
  /** Counter files as the host sees them: `max N` (refused forks) and `oom_kill N`. */
  pidsEvents?: string;
  memoryEvents?: string;
}

export interface HostConfig {
  workspace: string;
  mcpServers: SessionServerSpec[];
  scratch: string; // where the host keeps its own files; removed by the provider when the sandbox ends
  /** Forward 127.0.0.1:port (0: any free port) inside to the proxy's unix socket at this path. */
  proxy?: { socket: string; port: number };
  processScope: ProcessScope;
  limits?: HostLimits;
  /** The file-creation mask for everything the tools create (the user's, not the daemon's tighter one). */
  umask?: number;
}

/** Where the proxy socket is mounted inside the sandbox. */
export const PROXY_SOCKET_INSIDE = '/run/agentd/proxy.sock';
/** Where the sandbox's own limit counters are mounted (read-only) inside. */
export const LIMITS_DIR_INSIDE = '/run/agentd/limits';
/**
 * The loopback port the proxy appears on in a sandbox with its own network namespace:
 * fixed, so git remotes written into the workspace keep working in the next sandbox.
 */
export const PROXY_PORT_INSIDE = 7890;
