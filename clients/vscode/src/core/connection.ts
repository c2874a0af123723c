import type { z } from 'zod';
import { notOurSession, type AgentdClient } from '../../../lib/client.js';
import {
  AgentdError,
  ErrorCode,
  SessionAttach,
  SessionCreate,
  SessionDeltaNotification,
  SessionFork,
  SessionPrompt,
  type Event,
  type ParamsOf,
  type RequestDefinition,
} from '../../../../protocol/index.js';
import { AgentdNotFoundError, DaemonStoppedBridgeError, openBridge, type Bridge, type BridgeCommand, type PermissionHandler } from './bridge.js';

export type Delta = ParamsOf<typeof SessionDeltaNotification>;

export type ConnectionState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; attempt: number }
  /** The last attempt failed (`failures` in a row); another follows after a backoff. */
  | { kind: 'failed'; attempt: number; failures: number; message: string; notFound: boolean }
  /**
   * The daemon was stopped on purpose (`agentd stop`). The connection does not start it:
   * it waits (retrying with a backoff) until something else starts it, or `startDaemon()`.
   */
  | { kind: 'daemonStopped'; attempt: number; message: string }
  | { kind: 'stopped' };

export interface FollowHandlers {
  /** Each durable event once, in seq order, across reconnects. */
  onEvents(events: Event[]): void;
  /** Ephemeral streaming fragments of the session's running turn. */
  onDelta?(delta: Delta): void;
}

export interface Follow {
  readonly sessionId: string;
  /** The next seq wanted: every event before it was delivered. */
  readonly next: number;
  dispose(): void;
}

export interface ConnectionOptions {
  bridge: BridgeCommand;
  clientName: string;
  clientVersion?: string;
  onPermissionRequest?: PermissionHandler;
  /**
   * Waits before reconnect attempt `attempt` (1, 2, ...). Default: exponential backoff
   * from 100 ms to 5 s; tests pass a gate to decide when the reconnect happens.
   */
  waitBeforeReconnect?: (attempt: number, signal: AbortSignal) => Promise<void>;
}

interface FollowEntry {
  sessionId: string;
  next: number;
  handlers: FollowHandlers;
  disposed: boolean;
  /** The client this entry is subscribed (or subscribing) on; one subscription per connection. */
  subscribedOn?: AgentdClient;
  unsubscribe?: () => Promise<void>;
}

/**
 * The extension's one link to the daemon, through `agentd stdio`. When the bridge dies
 * or the daemon restarts, it starts a new bridge and resubscribes every followed
 * session from the last seq it delivered: no gap, no duplicate.
 */
export class AgentdConnection {
  private bridge: Bridge | undefined;
  private current: ConnectionState = { kind: 'connecting', attempt: 0 };
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly connectedWaiters = new Set<(client: AgentdClient) => void>();
  private readonly follows = new Set<FollowEntry>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  /**
   * Sessions this extension controls (created, forked, prompted or attached to as
   * controller): their permission questions are its to answer, and a new connection
   * attaches to them again, since control belongs to a connection.
   */
  private readonly controlled = new Set<string>();
  /** The next attempt starts the daemon even if it was stopped on purpose (the user asked). */
  private startAsked = false;
  private wakeRetry: (() => void) | undefined;

  constructor(private readonly options: ConnectionOptions) {}

  get state(): ConnectionState {
    return this.current;
  }

  /** The bridge's process id while connected (for diagnostics, and for tests that kill it). */
  get bridgePid(): number | undefined {
    return this.bridge?.child.pid;
  }

  onState(listener: (state: ConnectionState) => void): { dispose(): void } {
    this.stateListeners.add(listener);
    return { dispose: () => void this.stateListeners.delete(listener) };
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Sends a request once connected; fails if the connection drops before the answer. */
  async request<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    params: z.input<P>,
    waitMs = 15_000,
  ): Promise<z.output<R>> {
    const client = await this.connected(waitMs);
    const result = await client.request(def, params);
    this.noteControl(def.method, params as { sessionId?: string; role?: string }, result as { sessionId?: string });
    return result;
  }

  /** Makes this extension a controller of the session (a chat opened on it): it is asked its questions. */
  async control(sessionId: string): Promise<void> {
    await this.request(SessionAttach, { sessionId, role: 'controller' });
  }

  /** Whether this extension controls the session (see `controlled`). */
  controls(sessionId: string): boolean {
    return this.controlled.has(sessionId);
  }

  /** The user asked to start the daemon (after `agentd stop`): the next attempt starts it, now. */
  startDaemon(): void {
    this.startAsked = true;
    this.wakeRetry?.();
  }

  private noteControl(method: string, params: { sessionId?: string; role?: string }, result: { sessionId?: string }): void {
    if (method === SessionCreate.method || method === SessionFork.method) this.controlled.add(result.sessionId!);
    else if (method === SessionPrompt.method) this.controlled.add(params.sessionId!);
    else if (method === SessionAttach.method && params.role === 'controller') this.controlled.add(params.sessionId!);
    else if (method === SessionAttach.method) this.controlled.delete(params.sessionId!);
  }

  /** Questions of sessions this extension does not control are refused: a second line behind the daemon's rule. */
  private permissionHandler(): PermissionHandler | undefined {
    const handler = this.options.onPermissionRequest;
    if (!handler) return undefined;
    return (params, token) => (this.controlled.has(params.sessionId) ? handler(params, token) : Promise.reject(notOurSession(params.sessionId, this.options.clientName)));
  }

  /** Resolves with the live client, waiting up to `waitMs` for one. */
  connected(waitMs = 15_000): Promise<AgentdClient> {
    if (this.bridge && this.current.kind === 'connected') return Promise.resolve(this.bridge.client);
    // Waiting cannot help until the user fixes the setting or installs agentd, or starts the daemon.
    if (this.current.kind === 'failed' && this.current.notFound) return Promise.reject(new Error(this.current.message));
    if (this.current.kind === 'daemonStopped') return Promise.reject(new Error(this.current.message));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.connectedWaiters.delete(done);
        const state = this.current;
        reject(new Error(state.kind === 'failed' ? state.message : 'not connected to agentd'));
      }, waitMs);
      const done = (client: AgentdClient) => {
        clearTimeout(timer);
        resolve(client);
      };
      this.connectedWaiters.add(done);
    });
  }

  /** Follows a session from `from`: catch-up, then live, surviving reconnects. */
  follow(sessionId: string, from: number, handlers: FollowHandlers): Follow {
    const entry: FollowEntry = { sessionId, next: from, handlers, disposed: false };
    this.follows.add(entry);
    if (this.bridge) void this.subscribe(this.bridge.client, entry);
    return {
      sessionId,
      get next() {
        return entry.next;
      },
      dispose: () => {
        entry.disposed = true;
        this.follows.delete(entry);
        void entry.unsubscribe?.().catch(() => undefined);
      },
    };
  }

  async dispose(): Promise<void> {
    this.abort.abort();
    for (const entry of this.follows) entry.disposed = true;
    this.follows.clear();
    this.bridge?.dispose();
    await this.running;
    this.setState({ kind: 'stopped' });
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    for (const listener of [...this.stateListeners]) listener(state);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    // `retries` counts waits since the last working connection: it sets the backoff.
    for (let first = true, retries = 0, failures = 0, attempt = 1; !signal.aborted; first = false, attempt++) {
      if (!first && !this.startAsked) {
        retries += 1;
        const woken = new AbortController();
        this.wakeRetry = () => woken.abort();
        await (this.options.waitBeforeReconnect ?? backoff)(retries, AbortSignal.any([signal, woken.signal]));
        this.wakeRetry = undefined;
        if (signal.aborted) return;
      }
      const stopped = this.current.kind === 'daemonStopped' ? this.current : undefined;
      if (!stopped || this.startAsked) this.setState({ kind: 'connecting', attempt });
      const explicitStart = this.startAsked;
      this.startAsked = false;
      let bridge: Bridge;
      const onPermissionRequest = this.permissionHandler();
      try {
        bridge = await openBridge(explicitStart ? { ...this.options.bridge, args: [...this.options.bridge.args, '--start'] } : this.options.bridge, {
          clientName: this.options.clientName,
          ...(this.options.clientVersion ? { clientVersion: this.options.clientVersion } : {}),
          ...(onPermissionRequest ? { onPermissionRequest } : {}),
        });
      } catch (error) {
        if (error instanceof DaemonStoppedBridgeError) {
          // Still stopped: say so (once) and keep waiting without starting it.
          if (!stopped) this.setState({ kind: 'daemonStopped', attempt, message: error.message });
          continue;
        }
        failures += 1;
        this.setState({ kind: 'failed', attempt, failures, message: (error as Error).message, notFound: error instanceof AgentdNotFoundError });
        continue;
      }
      if (signal.aborted) {
        bridge.dispose();
        return;
      }
      this.bridge = bridge;
      const deltas = bridge.client.onNotification(SessionDeltaNotification, (delta) => {
        for (const entry of this.follows) if (entry.sessionId === delta.sessionId) entry.handlers.onDelta?.(delta);
      });
      // Control is per connection: take the controlled sessions up again first, so their
      // open questions come here. Then resubscribe before announcing the connection, so
      // callers see follows already live; follows added meanwhile subscribe themselves
      // (subscribe is idempotent per client).
      await Promise.all([...this.controlled].map((sessionId) => this.reattach(bridge.client, sessionId)));
      await Promise.all([...this.follows].map((entry) => this.subscribe(bridge.client, entry)));
      retries = 0;
      failures = 0;
      this.setState({ kind: 'connected', attempt });
      for (const waiter of [...this.connectedWaiters]) waiter(bridge.client);
      this.connectedWaiters.clear();
      await Promise.race([bridge.closed, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
      deltas.dispose();
      bridge.dispose();
      this.bridge = undefined;
      const notice = bridge.client.stoppingNotice;
      if (!signal.aborted) this.setState(notice ? { kind: 'daemonStopped', attempt, message: stoppedMessage(notice.reason) } : { kind: 'connecting', attempt: attempt + 1 });
    }
  }

  private async reattach(client: AgentdClient, sessionId: string): Promise<void> {
    await client.request(SessionAttach, { sessionId, role: 'controller' }).catch((error: unknown) => {
      if (error instanceof AgentdError && error.code === ErrorCode.SessionNotFound) this.controlled.delete(sessionId);
    });
  }

  private async subscribe(client: AgentdClient, entry: FollowEntry): Promise<void> {
    if (entry.disposed || entry.subscribedOn === client) return;
    entry.subscribedOn = client;
    try {
      const sub = await client.subscribe(entry.sessionId, entry.next, {
        onEvents: (events) => {
          if (entry.disposed) return;
          // Guards against an overlap between an old and a new subscription.
          const fresh = events.filter((e) => e.seq >= entry.next);
          if (fresh.length === 0) return;
          entry.next = fresh[fresh.length - 1]!.seq + 1;
          entry.handlers.onEvents(fresh);
        },
        onDropped: () => {
          entry.subscribedOn = undefined; // too slow for its buffer: subscribe again from entry.next
          void this.subscribe(client, entry);
        },
      });
      entry.unsubscribe = sub.unsubscribe;
      if (entry.disposed) await sub.unsubscribe().catch(() => undefined);
    } catch {
      // The connection closed under us: the next connection resubscribes from entry.next.
    }
  }
}

/** What the extension says when the daemon it was connected to is stopped on purpose. */
function stoppedMessage(reason: string): string {
  return `the agentd daemon was stopped on purpose (${reason}); start it again with \`agentd start\``;
}

function backoff(attempt: number, signal: AbortSignal): Promise<void> {
  const ms = Math.min(100 * 2 ** (attempt - 1), 5000);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
