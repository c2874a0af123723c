import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Readable } from 'node:stream';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import * as z from 'zod/mini';
import { CONFIGURE_METHOD, ConfigureResult, HostToolResult, WARM_METHOD, type HostConfig, type HostTimings } from './host/protocol.js';
import type { Launch } from './isolation/launch.js';
import type { LimitPlacement } from './limits/index.js';
import { ListenerHandover } from './listener-handover.js';
import type { ExecuteOptions, ToolDefinition, ToolErrorKind, ToolResult } from './types.js';
import { ChildProcessTransport } from './transport.js';
import { readStat } from './tools/procs.js';
import { callTimeLimitMs } from './tools/time-limit.js';

const CONNECT_TIMEOUT_MS = 20_000;
const CLOSE_GRACE_MS = 2_000;
const NO_TIMEOUT = 2 ** 31 - 1;
const STDERR_TAIL = 4_000;
/**
 * How long past a call's own time limit a host may stay silent before it is taken for hung
 * and killed: after a timeout the host still kills what the command started and checks the
 * shell is back (tools/shell.ts stopCommand: under a minute in the worst case).
 */
const HANG_GRACE_MS = 60_000;
/** How long the end of a sandbox waits for its pid 1 (and so for everything in it) to be gone. */
const INIT_GONE_MS = 10_000;

/** What bubblewrap reports on its info fd: the sandbox's pid 1 (outside numbering) and its namespaces. */
const BwrapInfo = z.object({ 'child-pid': z.number(), 'mnt-namespace': z.number() });
export type BwrapInfo = z.infer<typeof BwrapInfo>;

const ListedTools = z.object({ tools: z.array(z.object({ name: z.string(), description: z.optional(z.string()), inputSchema: z.record(z.string(), z.unknown()) })) });

function failure(kind: ToolErrorKind, message: string, started: number): ToolResult {
  return { content: [{ type: 'text', text: message }], isError: true, errorKind: kind, durationMs: performance.now() - started };
}

/** Reads a stream to its end (bubblewrap's info fd), bounded. */
function readAll(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (chunk: Buffer) => (text = (text + chunk.toString('utf8')).slice(0, 64_000)));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

/**
 * A started tool host: its launcher process tree, the MCP connection to it, and how it ends.
 * Configured once (`agentd/configure`): at once for a cold sandbox, when bound for a pooled one.
 */
export class HostProcess {
  readonly ended: Promise<{ reason: string }>;
  private endReason: string | null = null;
  private closing = false;
  private toolList: Promise<ToolDefinition[]> | null = null;
  private stderr = '';
  private readonly inFlight = new Set<() => void>(); // resolvers that report sandbox_lost to pending calls
  private connectionLost = false; // the host's stdio closed; its exit may be reported a moment later
  private endsAfterCall = false; // the host said it exits after its last answer (HostToolResult.endsSandbox)
  private condemned: string | null = null; // why the host was killed as hung, or for breaking the handover
  private readonly info: Promise<string> | null;
  /** The sandbox's pid 1 (outside numbering, with its start time), once close() has looked it up. */
  private init: { pid: number; start: number } | null = null;
  private readonly handover: ListenerHandover;
  /** The proxy's listener inside the sandbox, once handed over: closed when the sandbox ends (it would keep its network namespace). */
  private listener: Server | null = null;
  /** A configuration sent ahead of the calls (configureAhead): null once refused. */
  private configuring: Promise<unknown> | null = null;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly client: Client,
    private readonly placement: LimitPlacement | null,
    /** Removes what was made outside for the sandbox; `ended` settles after it. */
    cleanup: () => Promise<void>,
    /** The launcher's child is the sandbox's pid 1 (see Launch.pidNamespace). */
    private readonly pidNamespace: boolean,
  ) {
    const infoStream = child.stdio[4] as Readable | null;
    this.info = infoStream ? readAll(infoStream) : null;
    this.handover = new ListenerHandover(child, (why) => this.condemn(why));
    this.info?.catch(() => undefined);
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
        const reason = this.closing ? 'closed' : this.condemned ? `sandbox ${this.condemned}; killed` : `sandbox host ${how}${tail}`;
        this.endReason = reason;
        this.listener?.close();
        for (const lose of this.inFlight) lose();
        void this.initGone()
          .then(cleanup)
          .finally(() => resolve({ reason }));
      });
    });
  }

  /** Starts `launch` and completes the MCP handshake with the host it runs. */
  static async start(launch: Launch, env: Record<string, string>, placement: LimitPlacement | null, cleanup: () => Promise<void>): Promise<HostProcess> {
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      env,
      // fd 3 and 4 are the launcher's (seccomp program, info); 5 the channel the proxy's listener is handed over on (listener-handover.ts).
      stdio: ['pipe', 'pipe', 'pipe', launch.fd3 || launch.infoFd ? 'pipe' : 'ignore', launch.infoFd ? 'pipe' : 'ignore', 'ipc'],
      detached: true, // its own process group, so close() can kill everything it left behind
    }) as ChildProcessWithoutNullStreams;
    // A launcher that fails before reading its fd 3 resets the pipe: that failure is reported by its exit.
    if (launch.fd3) (child.stdio[3] as NodeJS.WritableStream).on('error', () => undefined).end(launch.fd3);
    // The MCP client is loaded with the first sandbox, not with whoever imports the provider.
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    let cleaned: Promise<void> | undefined;
    const once = () => (cleaned ??= cleanup());
    const host = new HostProcess(child, new Client({ name: 'agentd', version: '0.1.0' }), placement, once, launch.pidNamespace === true);
    child.once('error', () => void once());
    try {
      await host.withinTimeout(host.client.connect(new ChildProcessTransport(child)), 'answer', new Promise<never>((_, reject) => child.once('error', reject)));
    } catch (error) {
      throw await host.failedStart(error as Error);
    }
    return host;
  }

  private async withinTimeout<T>(work: Promise<T>, what: string, alsoFailOn?: Promise<never>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the sandbox host did not ${what} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    });
    try {
      return await Promise.race([work, slow, ...(alsoFailOn ? [alsoFailOn] : [])]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** After a failed start or configure: the error to report (with how the host ended), once it is gone. */
  async failedStart(error: Error): Promise<Error> {
    const exit = await this.startupFailure();
    await this.close();
    return exit ? new Error(`the sandbox host did not start: ${exit}`) : error;
  }

  /** After a failed start: how the host ended, with its stderr, once its streams are drained (bounded wait). */
  private async startupFailure(): Promise<string | null> {
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

  /** bubblewrap's report on the sandbox it started (launched with an info fd only). */
  async bwrapInfo(): Promise<BwrapInfo> {
    if (!this.info) throw new Error('this sandbox was not started with an info fd');
    return BwrapInfo.parse(JSON.parse(await this.info));
  }

  /** Running, and its connection open. */
  get alive(): boolean {
    return this.endReason === null && !this.connectionLost && !this.closing && !this.endsAfterCall && this.condemned === null;
  }

  /** Has the host load what its first command needs, while nobody waits for it (a pooled host). */
  async warm(): Promise<void> {
    await this.withinTimeout(this.client.request({ method: WARM_METHOD }, z.object({}), { timeout: NO_TIMEOUT }), 'load its shell');
  }

  /**
   * Binds the host to its session; resolves with where its start-up time went and, when the
   * config has a proxy, the listener the host opened for it inside (the caller serves it; it
   * is closed when the sandbox ends). The host answers only once the handover channel is
   * closed, so a proxy listener missing by then is not coming.
   */
  async configure(config: HostConfig): Promise<{ timings: HostTimings; listener: Server | null }> {
    const handedOver = config.proxy ? this.handover.expect(config.proxy.port) : null;
    if (!handedOver) this.handover.close();
    try {
      const result = await this.withinTimeout(this.client.request({ method: CONFIGURE_METHOD, params: config }, ConfigureResult, { timeout: NO_TIMEOUT }), 'accept its configuration');
      if (!handedOver) return { timings: result.timings, listener: null };
      this.listener = await Promise.race([handedOver, Promise.resolve(null)]);
      if (!this.listener) {
        this.condemn('its host answered its configuration without handing over the proxy listener');
        throw new Error('the sandbox host did not hand over the proxy listener');
      }
      if (this.endReason !== null) this.listener.close(); // ended meanwhile
      return { timings: result.timings, listener: this.listener };
    } finally {
      this.handover.close();
    }
  }

  /**
   * Sends the configuration and returns without its answer (a pooled sandbox): the calls made
   * meanwhile follow it down the same pipe, and the host runs them once bound. A host that
   * refuses it is condemned (`refused` hears why, unless close() came first): the calls behind
   * it end sandbox_lost, not with the host's answer that it is not configured.
   */
  configureAhead(config: HostConfig, refused: (why: string) => void): Promise<{ timings: HostTimings; listener: Server | null } | null> {
    const configured = this.configure(config).catch((error: Error) => {
      if (this.closing) return null;
      const why = `host did not accept its configuration (${error.message})`;
      this.condemn(why);
      refused(why);
      return null;
    });
    this.configuring = configured;
    return configured;
  }

  tools(): Promise<ToolDefinition[]> {
    this.toolList ??= this.client
      .request({ method: 'tools/list' }, ListedTools, { timeout: NO_TIMEOUT })
      .then((r) => r.tools.map((t) => ({ name: t.name, description: t.description ?? '', inputSchema: t.inputSchema })));
    this.toolList.catch(() => (this.toolList = null));
    return this.toolList;
  }

  /**
   * Runs a tool in the host. `hungAfterMs`: how long the host may stay silent on this call before
   * it is taken for hung, killed, and the call reported sandbox_lost (default: a built-in tool's
   * own time limit and a grace; none for an MCP server's tool), so that a host stuck for any
   * reason never holds a turn forever.
   */
  async execute(name: string, input: Record<string, unknown>, options: ExecuteOptions = {}): Promise<ToolResult> {
    const started = performance.now();
    if (this.endReason !== null || this.connectionLost || this.endsAfterCall || this.condemned !== null) {
      const why = this.condemned ?? this.endReason ?? (this.endsAfterCall ? 'it could run no more commands, and its host ended' : 'its host stopped answering');
      return failure('sandbox_lost', `the sandbox is gone (${why}); a new one must be provisioned`, started);
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
    const ownLimit = callTimeLimitMs(name, input);
    const hungAfterMs = options.hungAfterMs ?? (ownLimit === null ? null : ownLimit + HANG_GRACE_MS);
    const hangTimer = hungAfterMs === null ? undefined : setTimeout(() => this.condemn(`its host did not answer a ${name} call within ${Math.round(hungAfterMs / 1000)} s`), hungAfterMs);
    try {
      const request = { method: 'tools/call' as const, params: { name, arguments: input } };
      const call = this.client.request(request, HostToolResult, abort ? { signal: abort.signal, timeout: NO_TIMEOUT } : { timeout: NO_TIMEOUT });
      const result = await Promise.race([call, lost]);
      if (result === null) return failure('sandbox_lost', `the sandbox died during the call (${this.condemned ?? this.endReason})`, started);
      const { content, isError } = result;
      if (result.endsSandbox) this.endsAfterCall = true;
      return { content, isError, ...(isError ? { errorKind: result.errorKind ?? 'tool_error' } : {}), durationMs: performance.now() - started };
    } catch (error) {
      // The host's refusal of a call sent behind a configuration it refused: the sandbox is lost.
      if (this.configuring && (await this.configuring) === null && this.condemned !== null) {
        return failure('sandbox_lost', `the sandbox is gone (${this.condemned}); a new one must be provisioned`, started);
      }
      if (stopped === 'timeout') return failure('timeout', `${name} timed out after ${options.timeoutMs} ms and was stopped`, started);
      if (stopped === 'interrupted') return failure('interrupted', `${name} was interrupted`, started);
      if (this.endReason !== null || this.connectionLost) {
        return failure('sandbox_lost', `the sandbox died during the call (${this.endReason ?? 'the connection to its host closed'})`, started);
      }
      return failure('tool_error', `${name} failed: ${(error as Error).message}`, started);
    } finally {
      this.inFlight.delete(lose);
      clearTimeout(timer);
      clearTimeout(hangTimer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    if (this.child.pid === undefined) return; // never started
    this.handover.close();
    if (this.endReason === null) {
      this.closing = true;
      this.findInit();
      await this.client.close().catch(() => undefined);
      const grace = setTimeout(() => this.killAll(), CLOSE_GRACE_MS);
      await this.ended;
      clearTimeout(grace);
    }
  }

  /**
   * Notes the sandbox's pid 1 (the launcher's child) while the launcher is alive to name it: once
   * the launcher has exited, `ended` waits for it too. A launcher killed (the close grace ran
   * out) exits at once, while the kernel is still killing the sandbox's processes; they are all
   * gone only when pid 1 is.
   */
  private findInit(): void {
    if (!this.pidNamespace || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const pid = this.child.pid!;
    try {
      const [first] = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ');
      const stat = first ? readStat(Number(first)) : null;
      if (stat && stat.ppid === pid) this.init = { pid: stat.pid, start: stat.start };
    } catch {
      // No children file (a kernel without it), or the launcher is gone: nothing to wait for.
    }
  }

  /** Resolves once the sandbox's pid 1, when known, is gone or a zombie (bounded). */
  private async initGone(): Promise<void> {
    const init = this.init;
    if (!init) return;
    const deadline = performance.now() + INIT_GONE_MS;
    for (;;) {
      const now = readStat(init.pid);
      if (!now || now.start !== init.start || now.state === 'Z' || performance.now() > deadline) return;
      try {
        process.kill(init.pid, 'SIGKILL'); // its launcher is gone: it is being killed anyway
      } catch {
        // Gone.
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * A host silent past every limit, one that broke the handover, or one that refused the
   * configuration its calls were sent behind: its calls are lost now, and it is killed (its end follows).
   */
  private condemn(why: string): void {
    if (this.condemned !== null || this.endReason !== null) return;
    this.condemned = why;
    process.stderr.write(`agentd: sandbox ${why}: killed\n`);
    for (const lose of this.inFlight) lose();
    this.killAll();
  }

  /**
   * SIGKILLs the launcher's process group (only while it is unreaped, so the group id cannot have
   * been reused): the sandbox's pid 1 dies with it, and with pid 1 the whole pid namespace. The
   * sandbox's cgroup, when it has one, is emptied too (the only bound on an unisolated sandbox).
   */
  killAll(): void {
    void this.placement?.killAll();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
