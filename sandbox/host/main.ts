// The tool host: runs inside the sandbox boundary and serves the built-in tools (and the
// session's own MCP servers) as one MCP server over stdio. It starts knowing nothing of its
// session: `agentd/configure` binds it (at once for a cold sandbox, later for a pooled one,
// whose workspace is mounted in between), and tools answer only after that.
import { realpathSync } from 'node:fs';
import { findExecutable } from '../isolation/which.js';
import { ToolFailure, type ToolContext } from '../tools/define.js';
import { builtinTools, type ToolEntry } from '../tools/index.js';
import { LimitWatch } from '../tools/limit-watch.js';
import { SandboxProcesses } from '../tools/procs.js';
import { loadPty, PtyShell } from '../tools/shell.js';
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { CONFIGURE_METHOD, WARM_METHOD, HostConfig, type HostErrorKind, type HostTimings, type HostToolResult } from './protocol.js';
import { QUIET_MS, releaseMemory } from './idle-memory.js';
import { INVALID_PARAMS, parseParams, RpcError, serveStdio, type Handler } from './rpc.js';
import type { SessionServers } from './session-servers.js';

const OUTPUT_CAP = 30_000;
const SERVER_INFO = { name: 'agentd-sandbox-host', version: '0.1.0' };
const LATEST_PROTOCOL = '2025-06-18';

const timings: HostTimings = {
  timeOrigin: performance.timeOrigin,
  bootstrapped: performance.nodeTiming.bootstrapComplete,
  loaded: performance.now(),
  initialized: 0,
  configured: 0,
};

// zod/mini loads no messages of its own: the model reads these ones when its input is wrong.
z.config(en());

const Initialize = z.object({ protocolVersion: z.optional(z.string()) });
const CallTool = z.object({ name: z.string(), arguments: z.optional(z.record(z.string(), z.unknown())) });

/** A configuration with every part, parsed (not applied) while a pooled host waits. */
const WARM_UP_CONFIG: HostConfig = {
  workspace: '/',
  env: { PATH: '/usr/bin' },
  mcpServers: [{ name: 'warm-up', command: 'true', args: [], env: {} }],
  scratch: '/tmp',
  proxy: { port: 0, ca: '' },
  processScope: 'namespace',
  limits: { pids: 1, memoryMb: 1, pidsMechanism: 'none', memoryMechanism: 'none', pidsEvents: '', memoryEvents: '' },
  umask: 0o22,
};

function errorResult(message: string, errorKind: HostErrorKind = 'tool_error'): HostToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, errorKind };
}

/** The host once bound to its session. */
interface Bound {
  ctx: Omit<ToolContext, 'signal'>;
  shell: PtyShell;
  servers: SessionServers | null;
}

async function bind(config: HostConfig): Promise<Bound> {
  if (config.umask !== undefined) process.umask(config.umask);
  const workspace = realpathSync(config.workspace);
  process.chdir(workspace);
  const env = { ...config.env };
  // Before the shell starts, so its commands inherit AGENTD_PROXY and the HTTP(S)_PROXY variables,
  // and so that the channel to the daemon is closed before anything of the session runs.
  const { closeChannel, handOverListener, proxyEnv, trustEnv } = await import('./proxy-env.js');
  if (config.proxy) {
    Object.assign(env, proxyEnv(await handOverListener(config.proxy.port), env.NODE_OPTIONS));
    if (config.proxy.ca) Object.assign(env, await trustEnv(config.proxy.ca, config.scratch));
  } else {
    closeChannel();
  }
  const processes = new SandboxProcesses(config.processScope);
  const shell = new PtyShell(workspace, env, OUTPUT_CAP, config.scratch, processes, config.limits ? new LimitWatch(config.limits, processes) : null);
  // The MCP client side is loaded only for sessions that have servers of their own.
  const servers = config.mcpServers.length ? new (await import('./session-servers.js')).SessionServers(config.mcpServers, env, workspace) : null;
  return { ctx: { workspace, ripgrep: findExecutable('rg', env.PATH ?? ''), shell }, shell, servers };
}

async function callBuiltin(bound: Bound, entry: ToolEntry, args: Record<string, unknown>, signal: AbortSignal): Promise<HostToolResult> {
  const tool = await entry.load();
  // The schema's own method: glob and grep are bundled with their own (classic) zod.
  const parsed = tool.input.safeParse(args);
  if (!parsed.success) {
    return errorResult(`invalid input for ${entry.name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; ')}`);
  }
  const out = await tool.handler(parsed.data, { ...bound.ctx, signal });
  const isError = out.isError ?? false;
  return { content: out.content, isError, ...(out.timedOut ? { errorKind: 'timeout' as const } : isError ? { errorKind: 'tool_error' as const } : {}) };
}

/** Ends a host whose sandbox cannot run commands any more: the provider's next call gets a fresh sandbox. */
function giveUp(): void {
  process.stderr.write('agentd sandbox host: out of memory with no process left to kill (the tmpfs dirs hold it); exiting so the sandbox is replaced\n');
  process.exit(1);
}

function main(): void {
  let bound: Promise<Bound> | null = null;
  const byName = new Map(builtinTools.map((t) => [t.name, t]));
  const configured = async (): Promise<Bound> => {
    if (!bound) throw new RpcError(INVALID_PARAMS, `the host is not configured yet (${CONFIGURE_METHOD} first)`);
    return bound;
  };

  const handlers: Record<string, Handler> = {
    initialize: async (params) => {
      const { protocolVersion } = parseParams(Initialize, params ?? {});
      timings.initialized = performance.now();
      return { protocolVersion: protocolVersion ?? LATEST_PROTOCOL, capabilities: { tools: {} }, serverInfo: SERVER_INFO };
    },
    ping: async () => ({}),
    [WARM_METHOD]: async () => {
      await Promise.all([loadPty(), import('./proxy-env.js')]);
      // zod compiles a schema's parser on its first parse: done here, not while a session waits to be bound.
      z.safeParse(HostConfig, WARM_UP_CONFIG);
      return {};
    },
    [CONFIGURE_METHOD]: async (params) => {
      if (bound) throw new RpcError(INVALID_PARAMS, 'the host is configured already');
      bound = bind(parseParams(HostConfig, params));
      const { shell } = await bound;
      timings.configured = performance.now();
      // The shell starts while the answer travels; the first command finds it ready.
      setImmediate(() => shell.warm());
      return { timings };
    },
    'tools/list': async () => {
      const { servers } = await configured();
      const tools = await Promise.all(builtinTools.map((t) => t.load()));
      return { tools: [...tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })), ...(servers ? await servers.tools() : [])] };
    },
    'tools/call': async (params, signal): Promise<HostToolResult> => {
      const b = await configured();
      const { name, arguments: args = {} } = parseParams(CallTool, params);
      try {
        if (name.startsWith('mcp__')) {
          if (!b.servers) return errorResult(`unknown tool ${name}: this session has no MCP servers of its own`);
          return await b.servers.call(name, args, signal);
        }
        const entry = byName.get(name);
        if (!entry) return errorResult(`unknown tool: ${name}`);
        const result = await callBuiltin(b, entry, args, signal);
        if (!b.shell.unusable) return result;
        setImmediate(giveUp); // once this result is out; it says so, so no further call is sent here
        return { ...result, endsSandbox: true };
      } catch (error) {
        if (error instanceof ToolFailure) return errorResult(error.message);
        if (signal.aborted) return errorResult('interrupted', 'interrupted');
        return errorResult(`${name} failed: ${(error as Error).message}`);
      }
    },
  };

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const b = await bound?.catch(() => null);
    b?.shell.close();
    await b?.servers?.close();
    process.exit(0);
  };
  // Only once bound: a pooled host has only warmed up (V8's memory reducer is enough for
  // that), and the collection would drop the code its warm-up compiled for the bind.
  serveStdio(handlers, () => void stop(), { ms: QUIET_MS, onQuiet: () => bound && releaseMemory() });
  process.on('SIGTERM', () => void stop());
  process.on('SIGHUP', () => void stop());
}

/** Starts the host (start.ts calls this, once the module is loaded). */
export function run(): void {
  try {
    main();
  } catch (error) {
    process.stderr.write(`agentd sandbox host: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}
