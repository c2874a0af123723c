import type { SessionServerSpec } from './session-servers.js';

/** The provider hands the host its configuration in this environment variable (kept out of argv). */
export const HOST_CONFIG_ENV = 'AGENTD_SANDBOX_CONFIG';

export interface HostConfig {
  workspace: string;
  mcpServers: SessionServerSpec[];
  scratch: string; // where the host keeps its own files; removed by the provider when the sandbox ends
  /** Forward 127.0.0.1:port (0: any free port) inside to the proxy's unix socket at this path. */
  proxy?: { socket: string; port: number };
  /** The file-creation mask for everything the tools create (the user's, not the daemon's tighter one). */
  umask?: number;
}

/** Where bwrap mounts the proxy socket inside the sandbox. */
export const PROXY_SOCKET_INSIDE = '/run/agentd/proxy.sock';
/**
 * The loopback port the proxy appears on in a sandbox with its own network namespace:
 * fixed, so git remotes written into the workspace keep working in the next sandbox.
 */
export const PROXY_PORT_INSIDE = 7890;
