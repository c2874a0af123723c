/** `agentd mcp` as an MCP host runs it: the real command over stdio, driven by the SDK's Client. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { startAgentRig, type AgentRig } from './agent.js';
import { AGENTD_BIN } from './daemon.js';

export interface McpRig {
  client: Client;
  /** Protocol problems the client saw, e.g. a stdout line that was not a JSON-RPC message. */
  errors: Error[];
  stderr(): string;
  close(): Promise<void>;
}

/**
 * `agentd mcp` as a host runs it: the real command over stdio, driven by the SDK's
 * Client. `elicit`, when given, makes the client a host that can ask its user
 * (declared as `elicitation: {}`, as hosts predating elicitation modes do).
 */
export async function startMcp(
  home: string,
  elicit?: (message: string, meta?: Record<string, unknown>) => ElicitResult | Promise<ElicitResult>,
  env: Record<string, string> = {},
): Promise<McpRig> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [AGENTD_BIN, 'mcp'],
    env: { ...(process.env as Record<string, string>), AGENTD_HOME: home, ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += d));
  const errors: Error[] = [];
  const client = new Client({ name: 'agentd-mcp-test', version: '0.0.0' }, elicit ? { capabilities: { elicitation: {} } } : {});
  if (elicit) client.setRequestHandler(ElicitRequestSchema, (request) => elicit(request.params.message, request.params._meta));
  client.onerror = (error) => errors.push(error);
  await client.connect(transport);
  return { client, errors, stderr: () => stderr, close: () => client.close() };
}


/** A daemon wired to the model emulator with an `agentd mcp` on it: the usual start of an MCP test file. */
export async function startMcpRig(): Promise<{ rig: AgentRig; mcp: McpRig; dispose(): Promise<void> }> {
  const rig = await startAgentRig();
  const mcp = await startMcp(rig.daemon.layout.home);
  return {
    rig,
    mcp,
    async dispose() {
      await mcp.close();
      await rig.dispose();
    },
  };
}
