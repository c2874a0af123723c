/**
 * Subscriptions shared by all backends: catch-up by paged reads, then live events the
 * backend publishes once they are durable. A subscription registers for live events
 * *before* its first read, so every event is either published to it or already readable:
 * the union has no gap, and dropping seqs below `next` removes the overlap.
 */
import { eventBytes } from './event-bytes.js';
import type { StoredEvent, SubscribeOptions, Subscription, SubscriptionEnd, SubscriptionListener } from './session-log.js';

/** What a subscription needs from its backend: a durable range read [from, to), at most `limit` events and about `maxBytes`. */
export type RangeReader = (sessionId: string, from: number, to: number | undefined, limit: number, maxBytes: number) => Promise<StoredEvent[]>;


class LiveSubscription implements Subscription {
  readonly ended: Promise<SubscriptionEnd>;
  private settle!: (end: SubscriptionEnd) => void;
  private done = false;
  /** Live events not yet delivered; `start` skips the delivered prefix without shifting. */
  private buffer: StoredEvent[] = [];
  private start = 0;
  /** Bytes of buffer[start..]: what waits for the listener. */
  private pendingBytes = 0;
  private caughtUp = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly sessionId: string,
    /** First seq not yet handed to the listener. */
    private next: number,
    private readonly listener: SubscriptionListener,
    private readonly limits: Required<SubscribeOptions>,
    private readonly read: RangeReader,
    private readonly onEnd: (sub: LiveSubscription) => void,
  ) {
    this.ended = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** Called by the backend with durable events of this session, in seq order. */
  push(events: readonly StoredEvent[]): void {
    if (this.done) return;
    for (const event of events) {
      this.buffer.push(event);
      this.pendingBytes += eventBytes(event);
    }
    // Events the catch-up already delivered do not count as waiting.
    this.dropDelivered();
    if (this.pending() > this.limits.maxPending || this.pendingBytes > this.limits.maxPendingBytes) {
      this.end({ reason: 'overflow', next: this.next });
      return;
    }
    this.wake?.();
  }

  close(): void {
    this.end({ reason: 'closed', next: this.next });
  }

  end(end: SubscriptionEnd): void {
    if (this.done) return;
    this.done = true;
    // Release the buffer at once: an overflowed subscriber must not pin memory.
    this.buffer = [];
    this.start = 0;
    this.pendingBytes = 0;
    this.onEnd(this);
    this.wake?.();
    this.settle(end);
  }

  private pending(): number {
    return this.buffer.length - this.start;
  }

  private dropDelivered(): void {
    while (this.start < this.buffer.length && this.buffer[this.start]!.seq < this.next) this.pendingBytes -= eventBytes(this.buffer[this.start++]!);
    // Delivered events must not stay referenced: a subscriber that keeps up empties the
    // buffer at once (the common case), one that lags compacts it now and then.
    if (this.start === this.buffer.length) {
      this.buffer = [];
      this.start = 0;
    } else if (this.start > 64 && this.start * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.start);
      this.start = 0;
    }
  }

  async run(): Promise<void> {
    try {
      while (!this.done) {
        this.dropDelivered();
        const first = this.pending() > 0 ? this.buffer[this.start]!.seq : undefined;
        if (first === this.next) {
          const batch = this.takeBuffered();
          await this.deliver(batch);
        } else if (!this.caughtUp || first !== undefined) {
          // Catch-up, or a hole before the first buffered event: read up to it.
          const events = await this.read(this.sessionId, this.next, first, this.limits.batchSize, this.limits.maxBatchBytes);
          if (this.done) break;
          if (events.length > 0) {
            await this.deliver(events);
          } else if (first !== undefined && first > this.next) {
            throw new Error(`session log gap: seqs ${this.next}..${first - 1} are neither stored nor published`);
          } else {
            this.caughtUp = true;
          }
        } else {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
          this.wake = undefined;
        }
      }
    } catch (error) {
      this.end({ reason: 'error', next: this.next, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  private takeBuffered(): StoredEvent[] {
    const batch: StoredEvent[] = [];
    let seq = this.next;
    let bytes = 0;
    while (batch.length < this.limits.batchSize && this.start < this.buffer.length && this.buffer[this.start]!.seq === seq) {
      const event = this.buffer[this.start]!;
      bytes += eventBytes(event);
      if (bytes > this.limits.maxBatchBytes && batch.length > 0) break;
      batch.push(event);
      this.pendingBytes -= eventBytes(event);
      this.start++;
      seq++;
    }
    return batch;
  }

  /** `next` moves when a batch is handed over; a listener that fails gets it back in `next`. */
  private async deliver(events: StoredEvent[]): Promise<void> {
    if (this.done) return;
    const first = events[0]!.seq;
    this.next = events[events.length - 1]!.seq + 1;
    try {
      await this.listener(events);
    } catch (error) {
      this.next = first;
      throw error;
    }
  }
}

/** The live side of a backend: which subscriptions each session has. */
export class LiveSubscriptions {
  private readonly bySession = new Map<string, Set<LiveSubscription>>();

  constructor(private readonly read: RangeReader) {}

  /**
   * Registers first, then starts catch-up from `from`. The caller must call this
   * synchronously after learning `from` (already clamped to the durable head), so no
   * publish can slip between the two.
   */
  open(sessionId: string, from: number, listener: SubscriptionListener, limits: Required<SubscribeOptions>): Subscription {
    const sub = new LiveSubscription(sessionId, from, listener, limits, this.read, (s) => this.remove(s));
    let subs = this.bySession.get(sessionId);
    if (!subs) {
      subs = new Set();
      this.bySession.set(sessionId, subs);
    }
    subs.add(sub);
    void sub.run();
    return sub;
  }

  /** Durable events of one session, in seq order, exactly once each. */
  publish(sessionId: string, events: readonly StoredEvent[]): void {
    const subs = this.bySession.get(sessionId);
    if (!subs || events.length === 0) return;
    for (const sub of [...subs]) sub.push(events);
  }

  /** Whether anyone follows this session live. */
  has(sessionId: string): boolean {
    return this.bySession.has(sessionId);
  }

  /** Sessions followed live now. */
  sessionIds(): string[] {
    return [...this.bySession.keys()];
  }

  /** The session is gone: its subscriptions end with `error`, resuming nowhere. */
  endSession(sessionId: string, error: Error): void {
    for (const sub of [...(this.bySession.get(sessionId) ?? [])]) sub.end({ reason: 'error', next: 0, error });
  }

  closeAll(): void {
    for (const subs of [...this.bySession.values()]) for (const sub of [...subs]) sub.close();
  }

  private remove(sub: LiveSubscription): void {
    const subs = this.bySession.get(sub.sessionId);
    if (!subs) return;
    subs.delete(sub);
    if (subs.size === 0) this.bySession.delete(sub.sessionId);
  }
}
