import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { ApiTool } from './context.js';
import { contentBlocks, type McpContent, type ToolOutcome } from './tool-content.js';

export interface RemoteServerSpec {
  name: string;
  url: string;
  /** The Authorization header value, from the vault; never leaves the daemon. */
  authorization?: string;
}

const PREFIX = (name: string) => `mcp__${name}__`;

/**
 * A session's remote MCP servers (streamable HTTP), called by the daemon itself,
 * outside every sandbox, with the vault's token: their calls never pass through a
 * sandbox and the token never enters one. Connected lazily, reconnected after a failure.
 */
export class RemoteMcpServers {
  private readonly clients = new Map<string, Promise<Client>>();

  constructor(private readonly specs: readonly RemoteServerSpec[]) {}

  owns(toolName: string): boolean {
    return this.specs.some((s) => toolName.startsWith(PREFIX(s.name)));
  }

  private client(spec: RemoteServerSpec): Promise<Client> {
    let client = this.clients.get(spec.name);
    if (!client) {
      client = (async () => {
        // Loaded on first use: most sessions have no remote servers.
        const [{ Client }, { StreamableHTTPClientTransport }] = await Promise.all([
          import('@modelcontextprotocol/sdk/client/index.js'),
          import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
        ]);
        const c = new Client({ name: 'agentd', version: '1' });
        const headers: Record<string, string> = spec.authorization ? { authorization: spec.authorization } : {};
        await c.connect(new StreamableHTTPClientTransport(new URL(spec.url), { requestInit: { headers } }));
        return c;
      })();
      client.catch(() => this.clients.delete(spec.name));
      this.clients.set(spec.name, client);
    }
    return client;
  }

  async tools(): Promise<ApiTool[]> {
    const all = await Promise.all(
      this.specs.map(async (spec) => {
        const { tools } = await (await this.client(spec)).listTools();
        return tools.map((t) => ({ name: PREFIX(spec.name) + t.name, description: t.description ?? t.name, input_schema: t.inputSchema as Record<string, unknown> }));
      }),
    );
    return all.flat();
  }

  async call(toolName: string, input: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome> {
    const spec = this.specs.find((s) => toolName.startsWith(PREFIX(s.name)))!;
    try {
      const result = await (await this.client(spec)).callTool({ name: toolName.slice(PREFIX(spec.name).length), arguments: input }, undefined, { signal });
      // Typed loosely by the SDK (a union with the old `toolResult` form); the SDK checked it against its schema.
      const content = contentBlocks((result.content ?? []) as McpContent[]);
      return { content, isError: Boolean(result.isError), ...(result.isError ? { errorKind: 'tool_error' as const } : {}) };
    } catch (error) {
      if (signal.aborted) return { content: [{ type: 'text', text: 'interrupted' }], isError: true, errorKind: 'interrupted' };
      this.clients.delete(spec.name);
      return { content: [{ type: 'text', text: `remote MCP server ${spec.name} failed: ${(error as Error).message}` }], isError: true, errorKind: 'tool_error' };
    }
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.allSettled(clients.map(async (c) => (await c).close()));
  }
}
