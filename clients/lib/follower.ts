import { AgentdError, ErrorCode, SessionDeltaNotification, type Event } from '../../protocol/index.js';
import type { SubscriptionHandlers } from './client.js';
import type { Delta } from './transcript.js';

interface Disposable {
  dispose(): void;
}

/**
 * What a follower needs of a connection: `AgentdClient` has it, and so has the web page's
 * own (clients/web/rpc.ts, which cannot use Node's streams). Requests the daemon answers
 * with an error reject with AgentdError; anything else means the connection went.
 */
export interface FollowedConnection {
  /** Settles when the connection is gone. */
  readonly closed: Promise<unknown>;
  subscribe(sessionId: string, from: number | undefined, handlers: SubscriptionHandlers): Promise<{ headSeq: number; unsubscribe(): Promise<void> }>;
  onNotification(def: typeof SessionDeltaNotification, handler: (delta: Delta) => void): Disposable;
}

/**
 * Where a follower gets its connections: the one live now, word of each new one, and
 * a hold that keeps connections coming while the follower lives. `DaemonLink` is one;
 * `singleConnection` is a source that never reconnects.
 */
export interface ClientSource {
  readonly current: FollowedConnection | undefined;
  /** Called with each new connection; the source waits for the returned promise before it announces it. */
  onConnected(listener: (client: FollowedConnection) => Promise<void> | void): Disposable;
  hold(): Disposable;
}

/** A source of one connection: following ends with it. */
export function singleConnection(client: FollowedConnection): ClientSource {
  const none = { dispose: () => undefined };
  return { current: client, onConnected: () => none, hold: () => none };
}

export interface FollowerHooks {
  /** New events in seq order, each once, across resubscriptions and reconnections. */
  onEvents(events: Event[]): void;
  /**
   * Ephemeral fragments of the running turn, in order with the events: fragments that
   * arrive while the follower still catches up wait until it has (they belong after
   * every event it is catching up on).
   */
  onDelta?(delta: Delta): void;
  /** The follower has every event before `headSeq`, the log's head when it (re)subscribed. */
  onCaughtUp?(headSeq: number): void;
  /** The daemon will not follow the session (there is no such session): the follower stopped. */
  onEnded?(error: AgentdError): void;
}

/** Fragments kept while catching up; beyond, the oldest go (the durable reply still shows their text). */
const HELD_DELTAS_MAX = 2000;

/**
 * Follows one session from a cursor: subscribes on the source's connection, resubscribes
 * from where it was when the daemon drops the subscription (`session/subscriptionDropped`:
 * too slow, or the log failed under it) or the connection is replaced (a reconnect, a
 * daemon restart), so every event arrives once, in order, with no gap. It never dials:
 * whether and when to reconnect (and never to start a daemon stopped on purpose) is the
 * source's.
 */
export class SessionFollower {
  private cursor: number;
  /** The connection subscribed (or subscribing) on. */
  private on: FollowedConnection | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  /** While set, the follower is catching up to this head (undefined: until the subscribe answers). */
  private catchingUp: { headSeq: number | undefined } | undefined;
  private held: Delta[] = [];
  /** The delta listener on the connection followed on. */
  private deltas: Disposable | undefined;
  private disposed = false;
  private readonly stop = new AbortController();
  private readonly registrations: Disposable[];
  private subscribed!: () => void;
  /** Settles once the follower first subscribed (or ended): what it follows from now on reaches it. */
  readonly ready = new Promise<void>((resolve) => (this.subscribed = resolve));

  constructor(
    source: ClientSource,
    readonly sessionId: string,
    from: number,
    private readonly hooks: FollowerHooks,
  ) {
    this.cursor = from;
    this.registrations = [source.hold(), source.onConnected((client) => this.follow(client))];
    if (source.current) void this.follow(source.current);
  }

  /** The next seq wanted: every event before it was delivered. */
  get next(): number {
    return this.cursor;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stop.abort();
    for (const r of this.registrations) r.dispose();
    void this.unsubscribe?.().catch(() => undefined);
    this.deltas?.dispose();
    this.on = undefined;
  }

  /** Subscribes on `client` unless already on it: resolves once subscribed (or given up on it). */
  private async follow(client: FollowedConnection): Promise<void> {
    if (this.disposed || this.on === client) return;
    this.on = client;
    this.unsubscribe = undefined;
    this.held = [];
    this.deltas?.dispose();
    const deltas = client.onNotification(SessionDeltaNotification, (delta) => {
      if (delta.sessionId === this.sessionId && this.on === client) this.delta(delta);
    });
    this.deltas = deltas;
    void client.closed.then(() => {
      deltas.dispose();
      // The next connection resubscribes from the cursor.
      if (this.on === client) this.on = undefined;
    });
    await this.subscribe(client, this.cursor);
  }

  private async subscribe(client: FollowedConnection, from: number): Promise<void> {
    for (let failures = 0; !this.disposed && this.on === client; ) {
      this.catchingUp = { headSeq: undefined };
      try {
        const sub = await client.subscribe(this.sessionId, from, {
          onEvents: (events) => this.deliver(client, events),
          // `next` is the first seq the daemon did not send; what this follower has is never less.
          onDropped: (next) => {
            if (this.on === client && !this.disposed) void this.subscribe(client, Math.min(next, this.cursor));
          },
        });
        if (this.disposed || this.on !== client) return void sub.unsubscribe().catch(() => undefined);
        this.unsubscribe = sub.unsubscribe;
        this.subscribed();
        this.catchingUp = { headSeq: sub.headSeq };
        this.caughtUp();
        return;
      } catch (error) {
        // Not an answer from the daemon: the connection went, and the next one resubscribes.
        if (!(error instanceof AgentdError)) return;
        if (error.code === ErrorCode.SessionNotFound) {
          this.dispose();
          this.subscribed();
          return this.hooks.onEnded?.(error);
        }
        // The daemon is up but cannot serve the session now (its database is down, say): again, after a while.
        failures += 1;
        await delay(Math.min(50 * 2 ** failures, 2000), this.stop.signal);
        from = this.cursor;
      }
    }
  }

  private deliver(client: FollowedConnection, events: Event[]): void {
    if (this.disposed || this.on !== client) return;
    // A resubscription may overlap what was delivered: each event goes out once.
    const fresh = events.filter((e) => e.seq >= this.cursor);
    if (fresh.length === 0) return;
    this.cursor = fresh[fresh.length - 1]!.seq + 1;
    this.hooks.onEvents(fresh);
    this.caughtUp();
  }

  private delta(delta: Delta): void {
    if (!this.catchingUp) return this.hooks.onDelta?.(delta);
    this.held.push(delta);
    if (this.held.length > HELD_DELTAS_MAX) this.held.shift();
  }

  private caughtUp(): void {
    const head = this.catchingUp?.headSeq;
    if (head === undefined || this.cursor < head) return;
    this.catchingUp = undefined;
    this.hooks.onCaughtUp?.(head);
    for (const delta of this.held.splice(0)) this.hooks.onDelta?.(delta);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}
