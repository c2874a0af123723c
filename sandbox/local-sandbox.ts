import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { HOST_CONFIG_ENV, PROXY_PORT_INSIDE, PROXY_SOCKET_INSIDE, type HostConfig } from './host/config.js';
import { buildLaunch } from './isolation/launch.js';
import { probeIsolation, type IsolationLevel, type IsolationReport } from './isolation/probe.js';
import type { Sandbox, SandboxSpec, ToolContent, ToolDefinition, ToolErrorKind, ToolResult } from './provider.js';
import { ChildProcessTransport } from './transport.js';

const DEFAULT_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'TERM', 'TZ'];
const CONNECT_TIMEOUT_MS = 20_000;
const CLOSE_GRACE_MS = 2_000;
const NO_TIMEOUT = 2 ** 31 - 1;
const STDERR_TAIL = 4_000;
const SERVER_NAME = /^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$/;

const compiledRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hostEntry = path.join(compiledRoot, 'sandbox', 'host', 'main.js');

/** The compiled tree plus node_modules and package.json of the package it belongs to, read-only inside. */
function installPaths(): string[] {
  for (let dir = compiledRoot; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'node_modules'))) {
      return [...new Set([compiledRoot, path.join(dir, 'node_modules'), path.join(dir, 'package.json')])];
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the agentd package (package.json and node_modules) above ${compiledRoot}`);
  }
}

let cachedReport: Promise<IsolationReport> | null = null;

/** The machine's isolation report, probed once per process (a few short spawns). */
export function cachedIsolationReport(): Promise<IsolationReport> {
  cachedReport ??= probeIsolation();
  return cachedReport;
}

async function chooseLevel(requested: SandboxSpec['isolation'], available: Promise<IsolationReport>): Promise<IsolationLevel> {
  const report = await available;
  if (!requested || requested === 'auto') return report.best;
  if (!report.levels[requested].ok) {
    throw new Error(`isolation "${requested}" was requested but is not available here: ${report.levels[requested].detail}`);
  }
  return requested;
}

function buildEnv(spec: SandboxSpec, level: IsolationLevel, workspace: string, scratch: string, umask: number | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of spec.envAllowlist ?? DEFAULT_ENV_ALLOWLIST) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  env.HOME = level === 'bwrap' ? '/tmp' : workspace;
  Object.assign(env, spec.env);
  const proxy = spec.proxySocket
    ? level === 'bwrap'
      ? { socket: PROXY_SOCKET_INSIDE, port: PROXY_PORT_INSIDE }
      : { socket: spec.proxySocket, port: level === 'namespaces' ? PROXY_PORT_INSIDE : 0 }
    : undefined;
  const config: HostConfig = { workspace, mcpServers: spec.mcpServers ?? [], scratch, ...(proxy ? { proxy } : {}), ...(umask !== undefined ? { umask } : {}) };
  env[HOST_CONFIG_ENV] = JSON.stringify(config);
  return env;
}

function toContent(result: CallToolResult): ToolContent[] {
  return result.content.map((item): ToolContent => {
    if (item.type === 'text') return { type: 'text', text: item.text };
    if (item.type === 'image') return { type: 'image', data: item.data, mimeType: item.mimeType };
    return { type: 'text', text: JSON.stringify(item) };
  });
}

function failure(kind: ToolErrorKind, message: string, started: number): ToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, errorKind: kind, durationMs: performance.now() - started };
}

class LocalSandbox implements Sandbox {
  readonly ended: Promise<{ reason: string }>;
  private endReason: string | null = null;
  private closing = false;
  private toolList: Promise<ToolDefinition[]> | null = null;
  private stderr = '';
  private readonly inFlight = new Set<() => void>(); // resolvers that report sandbox_lost to pending calls
  private connectionLost = false; // the host's stdio closed; its exit may be reported a moment later

  constructor(
    readonly id: string,
    readonly isolation: IsolationLevel,
    readonly warnings: string[],
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly client: Client,
  ) {
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    client.onclose = () => {
      this.connectionLost = true;
      if (!this.closing) this.killAll(); // a host that cannot answer is dead: make sure its tree is too
    };
    this.ended = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
        const tail = this.stderr.trim() ? `: ${this.stderr.trim().slice(-500)}` : '';
        this.endReason = this.closing ? 'closed' : `sandbox host ${how}${tail}`;
        for (const lose of this.inFlight) lose();
        resolve({ reason: this.endReason });
      });
    });
  }

  /** After a failed start: how the host ended, with its stderr, once its streams are drained (bounded wait). */
  async startupFailure(): Promise<string | null> {
    if (this.child.pid === undefined) return null;
    const drained = new Promise<boolean>((resolve) => {
      if (this.child.stdout.closed && this.child.stderr.closed && this.child.exitCode !== null) resolve(true);
      this.child.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 1_000).unref();
    });
    if (!(await drained)) return null;
    const how = this.child.signalCode ? `killed by ${this.child.signalCode}` : `exited with code ${this.child.exitCode}`;
    const stderr = this.stderr.trim();
    return `${how}${stderr ? `: ${stderr.slice(-500)}` : ''}`;
  }

  tools(): Promise<ToolDefinition[]> {
    this.toolList ??= this.client.listTools().then((r) =>
      r.tools.map((t) => ({ name: t.name, description: t.description ?? '', inputSchema: t.inputSchema as Record<string, unknown> })),
    );
    this.toolList.catch(() => (this.toolList = null));
    return this.toolList;
  }

  async execute(name: string, input: Record<string, unknown>, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ToolResult> {
    const started = performance.now();
    if (this.endReason !== null || this.connectionLost) {
      return failure('sandbox_lost', `the sandbox is gone (${this.endReason ?? 'its host stopped answering'}); a new one must be provisioned`, started);
    }
    if (options.signal?.aborted) return failure('interrupted', 'interrupted before it started', started);
    // Only cancellable calls pay for an AbortController and listeners (the warm path stays lean).
    const abort = options.signal || options.timeoutMs ? new AbortController() : null;
    let stopped: 'interrupted' | 'timeout' | null = null;
    const onAbort = () => {
      stopped ??= 'interrupted';
      abort?.abort();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = options.timeoutMs ? setTimeout(() => ((stopped ??= 'timeout'), abort?.abort()), options.timeoutMs) : undefined;
    let lose!: () => void;
    const lost = new Promise<null>((resolve) => (lose = () => resolve(null)));
    this.inFlight.add(lose);
    try {
      const call = this.client.callTool({ name, arguments: input }, undefined, abort ? { signal: abort.signal, timeout: NO_TIMEOUT } : { timeout: NO_TIMEOUT });
      const result = (await Promise.race([call, lost])) as CallToolResult | null;
      if (result === null) return failure('sandbox_lost', `the sandbox died during the call (${this.endReason})`, started);
      const isError = result.isError === true;
      const hostKind = (result._meta?.['agentd/errorKind'] as ToolErrorKind | undefined) ?? 'tool_error';
      return { content: toContent(result), isError, ...(isError ? { errorKind: hostKind } : {}), durationMs: performance.now() - started };
    } catch (error) {
      if (stopped === 'timeout') return failure('timeout', `${name} timed out after ${options.timeoutMs} ms and was stopped`, started);
      if (stopped === 'interrupted') return failure('interrupted', `${name} was interrupted`, started);
      if (this.endReason !== null || this.connectionLost) {
        return failure('sandbox_lost', `the sandbox died during the call (${this.endReason ?? 'the connection to its host closed'})`, started);
      }
      return failure('tool_error', `${name} failed: ${(error as Error).message}`, started);
    } finally {
      this.inFlight.delete(lose);
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    if (this.child.pid === undefined) return; // never started
    if (this.endReason === null) {
      this.closing = true;
      await this.client.close().catch(() => undefined);
      const grace = setTimeout(() => this.killAll(), CLOSE_GRACE_MS);
      await this.ended;
      clearTimeout(grace);
    }
  }

  /** SIGKILLs the host's process group; only while the host is unreaped, so the group id cannot have been reused. */
  private killAll(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function validate(spec: SandboxSpec): string {
  if (!path.isAbsolute(spec.workspace)) throw new Error(`workspace must be an absolute path, got ${JSON.stringify(spec.workspace)}`);
  if (!existsSync(spec.workspace) || !statSync(spec.workspace).isDirectory()) throw new Error(`workspace ${spec.workspace} is not a directory`);
  const names = new Set<string>();
  for (const server of spec.mcpServers ?? []) {
    if (!SERVER_NAME.test(server.name)) throw new Error(`MCP server name ${JSON.stringify(server.name)} must be letters, digits, "-" and single "_"`);
    if (names.has(server.name)) throw new Error(`MCP server name ${JSON.stringify(server.name)} is used twice`);
    names.add(server.name);
  }
  return realpathSync(spec.workspace);
}

/** Starts the host at the chosen isolation level and waits until it can serve a tool call. */
export async function provisionLocal(spec: SandboxSpec, available: Promise<IsolationReport>, umask?: number): Promise<Sandbox> {
  const workspace = validate(spec);
  const level = await chooseLevel(spec.isolation, available);
  const id = `${spec.sessionId}-${randomBytes(4).toString('hex')}`;
  const warnings: string[] = [];
  if (level === 'none') {
    warnings.push(`sandbox ${id} runs WITHOUT ISOLATION: its commands can read and write anything this user can, including the network`);
  } else if (level === 'namespaces') {
    warnings.push(`sandbox ${id} uses namespaces only (private pid, network, ipc, uts): the filesystem is NOT hidden from it`);
  }
  for (const warning of warnings) process.stderr.write(`agentd: WARNING: ${warning}\n`);
  const launch = buildLaunch({ level, hostEntry, readOnly: installPaths(), workspace, binds: spec.binds ?? [], ...(spec.proxySocket ? { proxySocket: spec.proxySocket } : {}) });
  // Inside bwrap /tmp is private and vanishes with the sandbox; elsewhere the provider owns a dir and removes it.
  const scratch = level === 'bwrap' ? '/tmp' : mkdtempSync(path.join(tmpdir(), 'agentd-sandbox-'));
  const removeScratch = () => {
    if (level !== 'bwrap') rmSync(scratch, { recursive: true, force: true });
  };
  const child = spawn(launch.command, launch.args, {
    cwd: launch.cwd,
    env: buildEnv(spec, level, workspace, scratch, umask),
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // its own process group, so close() can kill everything it left behind
  });
  // The MCP client is loaded with the first sandbox, not with whoever imports the provider.
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const client = new Client({ name: 'agentd', version: '0.1.0' });
  const sandbox = new LocalSandbox(id, level, warnings, child, client);
  void sandbox.ended.then(removeScratch);
  child.once('error', removeScratch);
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the sandbox host did not answer within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
  });
  try {
    await Promise.race([client.connect(new ChildProcessTransport(child)), spawnFailed, slow]);
  } catch (error) {
    const exit = await sandbox.startupFailure();
    await sandbox.close();
    throw exit ? new Error(`the sandbox host did not start: ${exit}`) : error;
  } finally {
    clearTimeout(timer);
  }
  return sandbox;
}
