/**
 * What daemons sharing a session log tell each other that is not an event: an interrupt
 * for a turn running elsewhere, streaming deltas for subscribers on other daemons, and
 * permission questions that any daemon's clients may answer. Carried by the log's side
 * channel (LISTEN/NOTIFY on PostgreSQL); best effort, like deltas on one daemon, while
 * everything durable goes through the log. Every message is validated on arrival.
 */
import { z } from 'zod';
import { PermissionDecision } from '../../protocol/index.js';
import type { Logger } from '../logger.js';

const Id = z.string().min(1).max(200);
/** Session ids per follow message: well inside NOTIFY's 8000 bytes. */
const FOLLOW_CHUNK = 100;
/** A follow holds this long; followers repeat theirs more often than that (see wire.ts). */
export const FOLLOW_TTL_MS = 30_000;
const Base = { sessionId: Id, from: Id };

const BusMessage = z.discriminatedUnion('kind', [
  /** With `turnId`, only that turn, and stopped as it starts if it has not yet (a sub-agent whose parent was interrupted). */
  z.object({ kind: z.literal('interrupt'), ...Base, turnId: Id.optional() }),
  /** The session is archived: whoever runs it closes its sandbox now. */
  z.object({ kind: z.literal('release'), ...Base }),
  z.object({
    kind: z.literal('delta'),
    ...Base,
    turnId: Id,
    delta: z.enum(['text', 'tool_input']),
    index: z.number().int().nonnegative(),
    text: z.string(),
  }),
  /** The holder asks: the question itself is the permission.requested event in the log. */
  z.object({ kind: z.literal('permission.ask'), ...Base, toolUseId: Id }),
  /** A client of another daemon answered. */
  z.object({ kind: z.literal('permission.answer'), ...Base, toolUseId: Id, decision: PermissionDecision, by: z.string().max(400) }),
  /** Answered or withdrawn: stop asking. */
  z.object({ kind: z.literal('permission.closed'), ...Base, toolUseId: Id }),
  /** Tokens or web logins revoked on the sender: close the connections that use them. */
  z.object({ kind: z.literal('tokens.revoked'), from: Id, ids: z.array(Id).max(FOLLOW_CHUNK) }),
  /** The sender has subscribers of these sessions: send it their deltas for a while. */
  z.object({ kind: z.literal('follow'), from: Id, sessionIds: z.array(Id).max(FOLLOW_CHUNK) }),
]);
export type BusMessage = z.infer<typeof BusMessage>;
type Outgoing = BusMessage extends infer M ? (M extends BusMessage ? Omit<M, 'from'> : never) : never;
type Handler<K extends BusMessage['kind']> = (message: Extract<BusMessage, { kind: K }>) => void;

/**
 * NOTIFY payloads stop at 8000 bytes. A character costs at most 6 bytes in the JSON
 * (a \u00XX escape), so 1200 of them stay below with room for the envelope.
 */
const DELTA_TEXT_MAX = 1200;
/** Deltas of one block arriving within this window go out as one message. */
const DELTA_COALESCE_MS = 15;

export type BusSend = (payload: string) => Promise<void>;

export class ClusterBus {
  private readonly handlers = new Map<string, (message: BusMessage) => void>();
  /** One send in flight at a time: deltas of a block arrive in order. */
  private sending: Promise<void> = Promise.resolve();
  private pendingDelta: Extract<Outgoing, { kind: 'delta' }> | undefined;
  /** Sessions that subscribers on other daemons follow, until when. */
  private readonly followedUntil = new Map<string, number>();
  private deltaTimer: NodeJS.Timeout | undefined;

  constructor(
    /** This daemon: its own messages come back and are ignored. */
    readonly id: string,
    private readonly transport: BusSend,
    private readonly logger: Logger,
  ) {}

  on<K extends BusMessage['kind']>(kind: K, handler: Handler<K>): void {
    this.handlers.set(kind, handler as (message: BusMessage) => void);
  }

  /** A payload heard on the channel. */
  receive(payload: string): void {
    let message: BusMessage;
    try {
      message = BusMessage.parse(JSON.parse(payload));
    } catch (error) {
      this.logger.log('warn', 'ignored a malformed cluster message', { error: String(error).slice(0, 300) });
      return;
    }
    if (message.from === this.id) return;
    if (message.kind === 'follow') {
      const until = Date.now() + FOLLOW_TTL_MS;
      for (const sessionId of message.sessionIds) this.followedUntil.set(sessionId, until);
      return;
    }
    this.handlers.get(message.kind)?.(message);
  }

  send(message: Outgoing): void {
    this.flushDelta();
    this.enqueue(message);
  }

  /** Tells the other daemons that we have subscribers of these sessions; resolves once sent. */
  async follow(sessionIds: readonly string[]): Promise<void> {
    for (let at = 0; at < sessionIds.length; at += FOLLOW_CHUNK) this.send({ kind: 'follow', sessionIds: sessionIds.slice(at, at + FOLLOW_CHUNK) });
    await this.sending;
  }

  private followedElsewhere(sessionId: string): boolean {
    const until = this.followedUntil.get(sessionId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.followedUntil.delete(sessionId);
    return false;
  }

  /**
   * Coalesces consecutive deltas of one block, so a fast stream is not a query per token;
   * sends nothing for a session nobody on another daemon follows.
   */
  sendDelta(sessionId: string, turnId: string, delta: 'text' | 'tool_input', index: number, text: string): void {
    if (!this.followedElsewhere(sessionId)) return;
    const pending = this.pendingDelta;
    if (pending && pending.sessionId === sessionId && pending.turnId === turnId && pending.delta === delta && pending.index === index && pending.text.length + text.length <= DELTA_TEXT_MAX) {
      pending.text += text;
      return;
    }
    this.flushDelta();
    for (let at = 0; at < text.length; at += DELTA_TEXT_MAX) {
      this.flushDelta();
      this.pendingDelta = { kind: 'delta', sessionId, turnId, delta, index, text: text.slice(at, at + DELTA_TEXT_MAX) };
    }
    this.deltaTimer ??= setTimeout(() => this.flushDelta(), DELTA_COALESCE_MS);
  }

  /** Waits for every message sent so far to be handed to the transport. */
  async flush(): Promise<void> {
    this.flushDelta();
    await this.sending;
  }

  private flushDelta(): void {
    clearTimeout(this.deltaTimer);
    this.deltaTimer = undefined;
    const pending = this.pendingDelta;
    this.pendingDelta = undefined;
    if (pending) this.enqueue(pending);
  }

  private enqueue(message: Outgoing): void {
    const payload = JSON.stringify({ ...message, from: this.id });
    this.sending = this.sending.then(() =>
      this.transport(payload).catch((error: unknown) => this.logger.log('warn', 'a cluster message was not sent', { kind: message.kind, error: String(error) })),
    );
  }
}
