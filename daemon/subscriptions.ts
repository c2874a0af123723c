import { AgentdError, ErrorCode, SessionDeltaNotification, SessionEventNotification, SubscriptionDroppedNotification } from '../protocol/index.js';
import { fromLogError } from './errors.js';
import { newSubscriptionId } from './ids.js';
import type { Logger } from './logger.js';
import type { SessionLog, SubscribeOptions, Subscription } from './log/session-log.js';
import type { Peer } from './rpc/peer.js';

/** The log's subscription options (SubscribeOptions), each set, and how many subscriptions one connection may hold. */
export interface SubscriptionLimits extends Required<SubscribeOptions> {
  perConnection: number;
}

/** Bytes waiting on a client's socket past which deltas to it are skipped. */
const DELTA_BACKLOG_LIMIT = 1 << 20;

interface Active {
  peer: Peer;
  sessionId: string;
  subscription: Subscription;
}

/**
 * Bridges log subscriptions to connections. Each subscription delivers one batch at
 * a time and waits until the batch has reached the socket, so a client that stops
 * reading holds back only its own subscription; once more than `maxPending` events
 * wait for it, it is dropped with the cursor to resume from. Memory stays bounded.
 */
export class SubscriptionHub {
  private readonly active = new Map<string, Active>();
  /** The same subscriptions by session: a delta looks only at its session's. */
  private readonly bySession = new Map<string, Set<Active>>();
  /** Told when a session gets its first subscriber here; awaited before the subscription answers. */
  onFirstSubscriber: ((sessionId: string) => Promise<void>) | undefined;

  constructor(
    private readonly log: SessionLog,
    private readonly logger: Logger,
    private readonly limits: SubscriptionLimits,
  ) {}

  get count(): number {
    return this.active.size;
  }

  async open(peer: Peer, sessionId: string, from: number | undefined): Promise<{ subscriptionId: string; headSeq: number }> {
    // Counted before the first await, so pipelined subscribes cannot overshoot together.
    const max = this.limits.perConnection;
    if (peer.subscriptions.size + peer.subscribing >= max) {
      throw new AgentdError(ErrorCode.LimitExceeded, `this connection holds ${max} subscriptions already; unsubscribe from one first`, { limit: 'subscriptions', max });
    }
    peer.subscribing++;
    try {
      return await this.openCounted(peer, sessionId, from);
    } finally {
      peer.subscribing--;
    }
  }

  private async openCounted(peer: Peer, sessionId: string, from: number | undefined): Promise<{ subscriptionId: string; headSeq: number }> {
    const headSeq = await this.log.head(sessionId).catch((e) => Promise.reject(fromLogError(e, sessionId)));
    if (this.onFirstSubscriber && !this.followed().includes(sessionId)) await this.onFirstSubscriber(sessionId);
    const subscriptionId = newSubscriptionId();
    // The first batch must not overtake the response that names the subscription: the
    // reply is queued on the connection's writer within the microtasks that follow the
    // handler's return, so batches wait for the next turn of the event loop after it.
    let release!: () => void;
    const replied = new Promise<void>((resolve) => (release = resolve));
    const subscription = await this.log.subscribe(
      sessionId,
      Math.min(from ?? headSeq, headSeq),
      async (events) => {
        await replied;
        await peer.notify(SessionEventNotification, { subscriptionId, sessionId, events });
      },
      this.limits,
    );
    this.add(subscriptionId, { peer, sessionId, subscription });
    peer.subscriptions.add(subscriptionId);
    void subscription.ended.then((end) => {
      this.remove(subscriptionId);
      peer.subscriptions.delete(subscriptionId);
      if (end.reason === 'closed') return;
      const reason =
        end.reason === 'overflow'
          ? `subscriber too slow: more than ${this.limits.maxPending} events or ${this.limits.maxPendingBytes} bytes of them waited`
          : `subscription failed: ${end.error.message}`;
      this.logger.log('warn', 'subscription dropped', { subscriptionId, sessionId, next: end.next, reason, conn: peer.id });
      if (!peer.closed) void peer.notify(SubscriptionDroppedNotification, { subscriptionId, sessionId, next: end.next, reason }).catch(() => undefined);
    });
    setImmediate(release);
    return { subscriptionId, headSeq };
  }

  /** Sessions with a subscriber here now. */
  followed(): string[] {
    return [...this.bySession.keys()];
  }

  private add(subscriptionId: string, entry: Active): void {
    this.active.set(subscriptionId, entry);
    const entries = this.bySession.get(entry.sessionId);
    if (entries) entries.add(entry);
    else this.bySession.set(entry.sessionId, new Set([entry]));
  }

  private remove(subscriptionId: string): void {
    const entry = this.active.get(subscriptionId);
    if (!entry) return;
    this.active.delete(subscriptionId);
    const entries = this.bySession.get(entry.sessionId);
    entries?.delete(entry);
    if (entries?.size === 0) this.bySession.delete(entry.sessionId);
  }

  /** Ends one subscription of this peer; false if it has none by that id. */
  close(peer: Peer, subscriptionId: string): boolean {
    const entry = this.active.get(subscriptionId);
    if (!entry || entry.peer !== peer) return false;
    entry.subscription.close();
    this.remove(subscriptionId);
    peer.subscriptions.delete(subscriptionId);
    return true;
  }

  /**
   * Streaming fragments go to the session's subscribers as they come; never stored,
   * never queued behind a congested socket (a client that lags misses fragments, and
   * still gets the durable assistant.message).
   */
  broadcastDelta(sessionId: string, turnId: string, kind: 'text' | 'tool_input', index: number, text: string): void {
    const entries = this.bySession.get(sessionId);
    if (!entries) return;
    // One notification per connection, however many of its subscriptions follow the session.
    const sent = entries.size > 1 ? new Set<Peer>() : undefined;
    for (const entry of entries) {
      if (sent?.has(entry.peer) || entry.peer.backlog > DELTA_BACKLOG_LIMIT) continue;
      sent?.add(entry.peer);
      void entry.peer.notify(SessionDeltaNotification, { sessionId, turnId, kind, index, text }).catch(() => undefined);
    }
  }

  closeAll(peer: Peer): void {
    for (const id of [...peer.subscriptions]) this.close(peer, id);
  }
}
