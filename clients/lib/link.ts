import type { z } from 'zod';
import { AgentdError, ErrorCode, SessionAttach, SessionCreate, SessionFork, SessionPrompt, type RequestDefinition } from '../../protocol/index.js';
import { connect, notOurSession, type AgentdClient, type ConnectOptions, type PermissionHandler } from './client.js';
import { DaemonStoppedError } from './dial.js';
import { SessionFollower, type ClientSource, type FollowerHooks } from './follower.js';

/** One connection as the link holds it: the client, when it is gone, and how to let go of it. */
export interface LinkConnection {
  client: AgentdClient;
  closed: Promise<void>;
  close(): void;
}

/**
 * Makes one initialized connection. `explicit`: a person asked, so even a daemon stopped
 * on purpose may be started; `autostart`: a daemon that is not running may be started.
 * Throws DaemonStoppedError when the daemon was stopped on purpose and not `explicit`.
 */
export type Connector = (how: { explicit: boolean; autostart: boolean; onPermissionRequest: PermissionHandler | undefined }) => Promise<LinkConnection>;

export type LinkState =
  /** No connection, and nothing needs one now: the next request makes one. */
  | { kind: 'idle' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; attempt: number }
  /** The last attempt failed (`failures` in a row); another follows after a backoff. */
  | { kind: 'failed'; attempt: number; failures: number; message: string; error: unknown }
  /** Stopped on purpose (`agentd stop`): the link waits for someone to start it, and never starts it itself. */
  | { kind: 'daemonStopped'; attempt: number; reason: string | undefined; message: string }
  | { kind: 'closed' };

export interface LinkOptions {
  /** Names this client in refusals (a question about a session it does not control). */
  clientName: string;
  connector: Connector;
  /** Asked the questions of the sessions this link controls; others are refused. */
  onPermissionRequest?: PermissionHandler;
  /** Reconnect whenever the connection is lost (an editor, a terminal that follows), not only while followed or waited for. */
  keepConnected?: boolean;
  /** The first connection is a command a person just ran: it may start a daemon stopped on purpose. */
  explicitFirst?: boolean;
  /** Reconnections nobody waits for may start a daemon that is not running (default true). */
  autostartInBackground?: boolean;
  /** Errors after which waiting cannot help (a missing executable): waiters fail at once. */
  hopeless?: (error: unknown) => boolean;
  /** Waits before reconnect attempt `retry` (1, 2, ...); `signal` aborts it. Default: a backoff. */
  waitBeforeReconnect?: (retry: number, signal: AbortSignal) => Promise<void>;
}

/** The options of a socket connector: `connect`'s, without what the link decides; `autostart: false` never starts a daemon. */
export type SocketConnectorOptions = Omit<ConnectOptions, 'explicit' | 'onPermissionRequest'>;

/** Connections through `connect`: the daemon's unix socket, or the WebSocket of AGENTD_REMOTE (clients/lib/remote.ts). */
export function socketConnector(options: SocketConnectorOptions): Connector {
  return async ({ explicit, autostart, onPermissionRequest }) => {
    const client = await connect({
      ...options,
      explicit,
      autostart: options.autostart !== false && autostart,
      ...(onPermissionRequest ? { onPermissionRequest } : {}),
    });
    return { client, closed: client.closed, close: () => client.close() };
  };
}

/** Requests that change nothing, and so may be sent again on a new connection. */
const READS = new Set(['session/list', 'session/get', 'session/events']);

interface Waiter {
  resolve(client: AgentdClient): void;
  reject(error: unknown): void;
  /** Waits across failed attempts (until its own timeout) rather than failing with the first. */
  patient: boolean;
}

type Role = 'controller' | 'observer';

/**
 * A client's one link to the daemon: one connection at a time, made when needed and
 * made again when lost (with a backoff), on which followers (`follow`) resume. The
 * sessions it created, forked, prompted or attached to are attached again on every new
 * connection (control belongs to a connection), before followers resubscribe and the
 * connection is announced. When the daemon was stopped on purpose the link says so and
 * waits: it starts it again only when asked (`startDaemon`, or an explicit first dial).
 */
export class DaemonLink implements ClientSource {
  private live: LinkConnection | undefined;
  private linkState: LinkState = { kind: 'idle' };
  private readonly stateListeners = new Set<(state: LinkState) => void>();
  private readonly connectedListeners = new Set<(client: AgentdClient) => Promise<void> | void>();
  private readonly waiters = new Set<Waiter>();
  private readonly attached = new Map<string, Role>();
  private holds = 0;
  private running: Promise<void> | undefined;
  private readonly closing = new AbortController();
  private wakeUp: (() => void) | undefined;
  private startAsked = false;

  constructor(private readonly options: LinkOptions) {}

  get state(): LinkState {
    return this.linkState;
  }

  /** The live connection's client, if any (also while it is being announced). */
  get current(): AgentdClient | undefined {
    return this.live?.client;
  }

  onState(listener: (state: LinkState) => void): { dispose(): void } {
    this.stateListeners.add(listener);
    return { dispose: () => void this.stateListeners.delete(listener) };
  }

  onConnected(listener: (client: AgentdClient) => Promise<void> | void): { dispose(): void } {
    this.connectedListeners.add(listener);
    return { dispose: () => void this.connectedListeners.delete(listener) };
  }

  /** Keeps the link connected (reconnecting, after its backoff) while held. */
  hold(): { dispose(): void } {
    this.holds += 1;
    if (!this.running || this.linkState.kind === 'idle') this.wake();
    let held = true;
    return {
      dispose: () => {
        if (held) this.holds -= 1;
        held = false;
      },
    };
  }

  /** Starts connecting now (links that keep connected start here). */
  start(): void {
    this.wake();
  }

  /** The user asked to start the daemon (after `agentd stop`): the next attempt may start it, now. */
  startDaemon(): void {
    this.startAsked = true;
    this.wake();
  }

  /**
   * The live client, connecting when there is none. Without `waitMs` the next attempt's
   * failure is the answer; with it, failed attempts are waited out for that long (but
   * not a daemon stopped on purpose, nor a hopeless error).
   */
  client(options: { waitMs?: number } = {}): Promise<AgentdClient> {
    if (this.closing.signal.aborted) return Promise.reject(new Error(`${this.options.clientName} is shutting down`));
    if (this.live && this.linkState.kind === 'connected') return Promise.resolve(this.live.client);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        patient: options.waitMs !== undefined,
        resolve: (client) => (clearTimeout(timer), resolve(client)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
      if (options.waitMs !== undefined && Number.isFinite(options.waitMs)) {
        timer = setTimeout(() => {
          this.waiters.delete(waiter);
          const state = this.linkState;
          reject(new Error(state.kind === 'failed' || state.kind === 'daemonStopped' ? state.message : 'not connected to the agentd daemon'));
        }, options.waitMs);
      }
      this.waiters.add(waiter);
      this.wake();
    });
  }

  /**
   * A request on the live connection (made when needed). A read that fails because the
   * connection died under it is sent once more on a new one; anything that changes
   * state is not, since it may have taken effect.
   */
  async request<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    params: z.input<P>,
    waitMs?: number,
  ): Promise<z.output<R>> {
    const client = await this.client(waitMs === undefined ? {} : { waitMs });
    const undo = this.noteRole(def.method, params);
    try {
      const result = await client.request(def, params);
      this.noteCreated(def.method, result);
      return result;
    } catch (error) {
      // Refused: it took no effect. Lost on the way, it may have: the next connection attaches again.
      if (error instanceof AgentdError) undo();
      if (error instanceof AgentdError || !READS.has(def.method)) throw error;
      // A request that failed on a dying connection settles just before its close does.
      await Promise.race([client.closed, new Promise((r) => setTimeout(r, 100))]);
      if (this.live?.client === client) throw error;
      return (await this.client()).request(def, params);
    }
  }

  /** Attaches to the session (again on every new connection, until `detach`). */
  async attach(sessionId: string, role: Role): Promise<void> {
    await this.request(SessionAttach, { sessionId, role });
  }

  /** Whether this link controls the session: its questions are this client's to answer. */
  controls(sessionId: string): boolean {
    return this.attached.get(sessionId) === 'controller';
  }

  /** Follows a session from `from` on this link's connections. */
  follow(sessionId: string, from: number, hooks: FollowerHooks): SessionFollower {
    return new SessionFollower(this, sessionId, from, hooks);
  }

  /** Lets go of the daemon: the connection closes, waiters fail, nothing reconnects. */
  async close(): Promise<void> {
    this.closing.abort();
    this.wakeUp?.();
    this.live?.close();
    for (const waiter of this.waiters) waiter.reject(new Error(`${this.options.clientName} is shutting down`));
    this.waiters.clear();
    await this.running;
    this.setState({ kind: 'closed' });
  }

  /** Who controls what after a request: the creator of a session, a prompter, an attach. Returns how to undo it. */
  private noteRole(method: string, params: unknown): () => void {
    const sessionId = field(params, 'sessionId');
    if (sessionId === undefined || (method !== SessionPrompt.method && method !== SessionAttach.method)) return () => undefined;
    const before = this.attached.get(sessionId);
    const role = method === SessionPrompt.method ? 'controller' : field(params, 'role');
    if (role === 'controller' || role === 'observer') this.attached.set(sessionId, role);
    return () => (before === undefined ? this.attached.delete(sessionId) : this.attached.set(sessionId, before));
  }

  private noteCreated(method: string, result: unknown): void {
    const sessionId = field(result, 'sessionId');
    if (sessionId !== undefined && (method === SessionCreate.method || method === SessionFork.method)) this.attached.set(sessionId, 'controller');
  }

  /** Questions of sessions this link does not control are refused: a second line behind the daemon's rule. */
  private permissionHandler(): PermissionHandler | undefined {
    const handler = this.options.onPermissionRequest;
    if (!handler) return undefined;
    return (question, signal) =>
      this.controls(question.sessionId) ? handler(question, signal) : Promise.reject(notOurSession(question.sessionId, this.options.clientName));
  }

  private setState(state: LinkState): void {
    this.linkState = state;
    for (const listener of [...this.stateListeners]) listener(state);
  }

  private wanted(): boolean {
    return this.options.keepConnected === true || this.holds > 0 || this.waiters.size > 0 || this.startAsked;
  }

  private wake(): void {
    if (this.closing.signal.aborted) return;
    this.running ??= this.run();
    this.wakeUp?.();
  }

  /** Waits until woken (or `wait` settles, when given). */
  private async sleep(wait?: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const woken = new AbortController();
    this.wakeUp = () => woken.abort();
    const signal = AbortSignal.any([woken.signal, this.closing.signal]);
    await (wait ? wait(signal) : aborted(signal));
    this.wakeUp = undefined;
  }

  private async run(): Promise<void> {
    // `retries` counts waits since the last working connection: it sets the backoff.
    for (let attempt = 1, retries = 0, failures = 0; !this.closing.signal.aborted; attempt++) {
      if (attempt > 1) {
        if (!this.wanted()) {
          this.setState({ kind: 'idle' });
          await this.sleep();
          retries = 0;
        } else if (this.waiters.size === 0 && !this.startAsked) {
          retries += 1;
          const stopped = this.linkState.kind === 'daemonStopped';
          const wait = this.options.waitBeforeReconnect;
          await this.sleep((signal) => (wait ? wait(retries, signal) : backoff(retries, signal, stopped)));
        }
        if (this.closing.signal.aborted) return;
      }
      const explicit = this.startAsked || (attempt === 1 && this.options.explicitFirst === true);
      this.startAsked = false;
      const autostart = explicit || this.waiters.size > 0 || this.options.autostartInBackground !== false;
      if (this.linkState.kind !== 'daemonStopped' || explicit) this.setState({ kind: 'connecting', attempt });
      let connection: LinkConnection;
      try {
        connection = await this.options.connector({ explicit, autostart, onPermissionRequest: this.permissionHandler() });
      } catch (error) {
        if (error instanceof DaemonStoppedError) {
          // Still stopped: say so (once) and keep waiting without starting it.
          if (this.linkState.kind !== 'daemonStopped') this.setState({ kind: 'daemonStopped', attempt, reason: error.reason, message: error.message });
          this.failWaiters(error, true);
        } else {
          failures += 1;
          this.setState({ kind: 'failed', attempt, failures, message: (error as Error).message, error });
          this.failWaiters(error, this.options.hopeless?.(error) === true);
        }
        continue;
      }
      if (this.closing.signal.aborted) return connection.close();
      this.live = connection;
      await this.reattach(connection.client);
      await Promise.all([...this.connectedListeners].map(async (listener) => listener(connection.client)));
      if (this.closing.signal.aborted) return connection.close();
      retries = 0;
      failures = 0;
      this.setState({ kind: 'connected', attempt });
      for (const waiter of this.waiters) waiter.resolve(connection.client);
      this.waiters.clear();
      await Promise.race([connection.closed, aborted(this.closing.signal)]);
      connection.close();
      this.live = undefined;
      const notice = connection.client.stoppingNotice;
      if (this.closing.signal.aborted) return;
      this.setState(
        notice
          ? { kind: 'daemonStopped', attempt, reason: notice.reason, message: `the agentd daemon was stopped on purpose (${notice.reason}); start it again with \`agentd start\`` }
          : { kind: 'connecting', attempt: attempt + 1 },
      );
    }
  }

  /** Control belongs to a connection: take the sessions up again, so their open questions come here. */
  private async reattach(client: AgentdClient): Promise<void> {
    await Promise.all(
      [...this.attached].map(([sessionId, role]) =>
        client.request(SessionAttach, { sessionId, role }).catch((error: unknown) => {
          if (error instanceof AgentdError && error.code === ErrorCode.SessionNotFound) this.attached.delete(sessionId);
        }),
      ),
    );
  }

  /** An attempt failed: waiters that wait for one attempt get its error; patient ones only when waiting cannot help. */
  private failWaiters(error: unknown, all: boolean): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.patient && !all) continue;
      this.waiters.delete(waiter);
      waiter.reject(error);
    }
  }
}

/** Settles when `signal` aborts (at once if it has). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
}

/** A field of an object whose shape is a request's params or result, when it is a string. */
function field(value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const found: unknown = Reflect.get(value, name);
  return typeof found === 'string' ? found : undefined;
}

/** Exponential from 100 ms to 5 s; a daemon stopped on purpose is looked at twice a second. */
function backoff(retry: number, signal: AbortSignal, stopped = false): Promise<void> {
  const ms = stopped ? 500 : Math.min(100 * 2 ** (retry - 1), 5000);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
