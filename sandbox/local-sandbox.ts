import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { IsolationLevel } from './isolation/probe.js';
import type { Limiter, LimitPlacement } from './limits/index.js';
import { prepareLaunch, type LevelCheck } from './local-launch.js';
import type { AppliedLimits, Sandbox, SandboxSpec, ToolContent, ToolDefinition, ToolErrorKind, ToolResult } from './provider.js';
import { ChildProcessTransport } from './transport.js';

const CONNECT_TIMEOUT_MS = 20_000;
const CLOSE_GRACE_MS = 2_000;
const NO_TIMEOUT = 2 ** 31 - 1;
const STDERR_TAIL = 4_000;


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
    private readonly placement: LimitPlacement | null,
    readonly limits: AppliedLimits | null,
    /** Removes what was made outside for the sandbox; `ended` settles after it. */
    cleanup: () => Promise<void>,
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
        const reason = this.closing ? 'closed' : `sandbox host ${how}${tail}`;
        this.endReason = reason;
        for (const lose of this.inFlight) lose();
        void cleanup().finally(() => resolve({ reason }));
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

  /**
   * SIGKILLs the launcher's process group (only while it is unreaped, so the group id cannot have
   * been reused): the sandbox's pid 1 dies with it, and with pid 1 the whole pid namespace. The
   * sandbox's cgroup, when it has one, is emptied too (the only bound on an unisolated sandbox).
   */
  private killAll(): void {
    void this.placement?.killAll();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Starts the host at the chosen isolation level and waits until it can serve a tool call. */
export async function provisionLocal(spec: SandboxSpec, available: LevelCheck, limiter: Limiter, umask?: number): Promise<Sandbox> {
  const id = `${spec.sessionId}-${randomBytes(4).toString('hex')}`;
  const prepared = await prepareLaunch(spec, id, available, limiter, umask);
  const { launch, level, warnings } = prepared;
  for (const warning of warnings) process.stderr.write(`agentd: WARNING: ${warning}\n`);
  const child = spawn(launch.command, launch.args, {
    cwd: launch.cwd,
    env: prepared.env,
    stdio: ['pipe', 'pipe', 'pipe', ...(launch.fd3 ? (['pipe'] as const) : [])],
    detached: true, // its own process group, so close() can kill everything it left behind
  }) as ChildProcessWithoutNullStreams;
  // A launcher that fails before reading its fd 3 resets the pipe: that failure is reported by its exit.
  if (launch.fd3) (child.stdio[3] as NodeJS.WritableStream).on('error', () => undefined).end(launch.fd3);
  // The MCP client is loaded with the first sandbox, not with whoever imports the provider.
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const client = new Client({ name: 'agentd', version: '0.1.0' });
  let cleaned: Promise<void> | undefined;
  const cleanup = () => (cleaned ??= prepared.cleanup());
  const { placement } = prepared;
  const limits = placement && spec.limits ? { ...spec.limits, pidsMechanism: placement.pids, memoryMechanism: placement.memory } : null;
  const sandbox = new LocalSandbox(id, level, warnings, child, client, placement, limits, cleanup);
  child.once('error', () => void cleanup());
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
    await cleanup();
    throw exit ? new Error(`the sandbox host did not start: ${exit}`) : error;
  } finally {
    clearTimeout(timer);
  }
  return sandbox;
}
