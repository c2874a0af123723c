import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { ToolFailure } from '../tools/define.js';
import type { HostToolResult, SessionServerSpec, ToolContent } from './protocol.js';

const START_TIMEOUT_MS = 20_000;
const STDERR_TAIL = 2_000;
const NO_TIMEOUT = 2 ** 31 - 1;

interface Running {
  spec: SessionServerSpec;
  client: Client | null;
  tools: Tool[];
  failure: string | null; // why the server is not usable, once it is not
  stderr: string;
}

/** A server's content in the provider's shape: text and images as they are, anything else as its JSON. */
function toolContent(result: CallToolResult): ToolContent[] {
  return result.content.map((item): ToolContent => {
    if (item.type === 'text') return { type: 'text', text: item.text };
    if (item.type === 'image') return { type: 'image', data: item.data, mimeType: item.mimeType };
    return { type: 'text', text: JSON.stringify(item) };
  });
}

/**
 * The session's own MCP servers, started by the host inside the sandbox boundary and proxied
 * as `mcp__<server>__<tool>`. A server that fails or dies only fails calls to it.
 */
export class SessionServers {
  private readonly servers = new Map<string, Running>();
  private readonly ready: Promise<void>;

  constructor(specs: SessionServerSpec[], env: Record<string, string>, cwd: string) {
    for (const spec of specs) this.servers.set(spec.name, { spec, client: null, tools: [], failure: null, stderr: '' });
    this.ready = Promise.all([...this.servers.values()].map((s) => this.start(s, env, cwd))).then(() => undefined);
  }

  private describe(server: Running, what: string): string {
    const stderr = server.stderr.trim();
    return `${what}${stderr ? `; its stderr ends with: ${stderr.slice(-500)}` : ''}`;
  }

  private async start(server: Running, env: Record<string, string>, cwd: string): Promise<void> {
    const transport = new StdioClientTransport({
      command: server.spec.command,
      args: server.spec.args ?? [],
      env: { ...env, ...server.spec.env },
      cwd,
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (chunk: Buffer) => {
      server.stderr = (server.stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    const client = new Client({ name: 'agentd-sandbox-host', version: '0.1.0' });
    client.onclose = () => {
      server.client = null;
      server.failure ??= this.describe(server, `MCP server "${server.spec.name}" exited`);
    };
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not finish starting within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      });
      try {
        await Promise.race([client.connect(transport), timeout]);
        const tools: Tool[] = [];
        let cursor: string | undefined;
        do {
          const page = await Promise.race([client.listTools(cursor ? { cursor } : undefined), timeout]);
          tools.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor);
        server.tools = tools;
        server.client = client;
      } finally {
        clearTimeout(timer);
      }
    } catch (error) {
      server.failure ??= this.describe(server, `MCP server "${server.spec.name}" failed to start: ${(error as Error).message}`);
      await client.close().catch(() => undefined);
    }
  }

  async tools(): Promise<Tool[]> {
    await this.ready;
    const out: Tool[] = [];
    for (const [name, server] of this.servers) {
      for (const tool of server.tools) out.push({ ...tool, name: `mcp__${name}__${tool.name}` });
    }
    return out;
  }

  async call(fullName: string, args: Record<string, unknown>, signal: AbortSignal): Promise<HostToolResult> {
    const rest = fullName.slice('mcp__'.length);
    const split = rest.indexOf('__');
    const serverName = split === -1 ? rest : rest.slice(0, split);
    const toolName = split === -1 ? '' : rest.slice(split + 2);
    const server = this.servers.get(serverName);
    if (!server) throw new ToolFailure(`unknown tool ${fullName}: there is no MCP server named "${serverName}" in this session`);
    await this.ready;
    if (!server.client) throw new ToolFailure(`${fullName} is unavailable: ${server.failure ?? `MCP server "${serverName}" is not running`}`);
    try {
      const result = (await server.client.callTool({ name: toolName, arguments: args }, undefined, { signal, timeout: NO_TIMEOUT })) as CallToolResult;
      const isError = result.isError === true;
      return { content: toolContent(result), isError, ...(isError ? { errorKind: 'tool_error' as const } : {}) };
    } catch (error) {
      if (signal.aborted) throw error;
      if (!server.client) throw new ToolFailure(`${fullName} failed: ${server.failure ?? 'the server exited'}`);
      throw new ToolFailure(`${fullName} failed: ${(error as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => s.client?.close().catch(() => undefined)));
  }
}
