/** `agentd mcp` as an MCP host runs it: the real command over stdio, driven by the SDK's Client. */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
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
export async function startMcp(home: string, elicit?: (message: string) => ElicitResult, env: Record<string, string> = {}): Promise<McpRig> {
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
  if (elicit) client.setRequestHandler(ElicitRequestSchema, (request) => elicit(request.params.message));
  client.onerror = (error) => errors.push(error);
  await client.connect(transport);
  return { client, errors, stderr: () => stderr, close: () => client.close() };
}

