// The tool host: runs inside the sandbox boundary and serves the built-in tools (and the
// session's own MCP servers) as one MCP server over stdio.
import { realpathSync } from 'node:fs';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { findExecutable } from '../isolation/which.js';
import { ToolFailure, type ToolContext } from '../tools/define.js';
import { builtinTools } from '../tools/index.js';
import { LimitWatch } from '../tools/limit-watch.js';
import { SandboxProcesses } from '../tools/procs.js';
import { PtyShell } from '../tools/shell.js';
import { HOST_CONFIG_ENV, type HostConfig } from './config.js';
import type { SessionServers } from './session-servers.js';

const OUTPUT_CAP = 30_000;

function errorResult(message: string, errorKind = 'tool_error'): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, _meta: { 'agentd/errorKind': errorKind } };
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env[HOST_CONFIG_ENV] ?? 'null') as HostConfig | null;
  if (!config) throw new Error(`${HOST_CONFIG_ENV} is not set; the host is started by the sandbox provider`);
  delete process.env[HOST_CONFIG_ENV];
  if (config.umask !== undefined) process.umask(config.umask);
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  // Before the shell starts, so its commands inherit AGENTD_PROXY.
  if (config.proxy) env.AGENTD_PROXY = await (await import('./proxy-forward.js')).forwardProxy(config.proxy);
  const workspace = realpathSync(config.workspace);
  const ripgrep = findExecutable('rg', env.PATH ?? '');
  const processes = new SandboxProcesses(config.processScope);
  const shell = new PtyShell(workspace, env, OUTPUT_CAP, config.scratch, processes, config.limits ? new LimitWatch(config.limits, processes) : null);
  // The MCP client side is loaded only for sessions that have servers of their own.
  const servers: SessionServers | null = config.mcpServers.length
    ? new (await import('./session-servers.js')).SessionServers(config.mcpServers, env, workspace)
    : null;
  const byName = new Map(builtinTools.map((t) => [t.name, t]));

  const server = new Server({ name: 'agentd-sandbox-host', version: '0.1.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [...builtinTools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as { type: 'object' } })), ...(servers ? await servers.tools() : [])],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name, arguments: args = {} } = request.params;
    try {
      if (name.startsWith('mcp__')) {
        if (!servers) return errorResult(`unknown tool ${name}: this session has no MCP servers of its own`);
        return await servers.call(name, args, extra.signal);
      }
      const tool = byName.get(name);
      if (!tool) return errorResult(`unknown tool: ${name}`);
      const parsed = tool.input.safeParse(args);
      if (!parsed.success) {
        return errorResult(`invalid input for ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; ')}`);
      }
      const ctx: ToolContext = { workspace, ripgrep, signal: extra.signal, shell };
      const out = await tool.handler(parsed.data, ctx);
      const kind = out.timedOut ? 'timeout' : out.isError ? 'tool_error' : undefined;
      return { content: out.content, isError: out.isError ?? false, ...(kind ? { _meta: { 'agentd/errorKind': kind } } : {}) };
    } catch (error) {
      if (error instanceof ToolFailure) return errorResult(error.message);
      if (extra.signal.aborted) return errorResult('interrupted', 'interrupted');
      return errorResult(`${name} failed: ${(error as Error).message}`);
    }
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    shell.close();
    await servers?.close();
    process.exit(0);
  };
  const transport = new StdioServerTransport();
  transport.onclose = () => void stop();
  process.stdin.on('end', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('SIGHUP', () => void stop());
  await server.connect(transport);
}

main().catch((error: unknown) => {
  process.stderr.write(`agentd sandbox host: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
