import type { SessionServerSpec } from './session-servers.js';

/** The provider hands the host its configuration in this environment variable (kept out of argv). */
export const HOST_CONFIG_ENV = 'AGENTD_SANDBOX_CONFIG';

export interface HostConfig {
  workspace: string;
  mcpServers: SessionServerSpec[];
}
