/**
 * An in-memory SessionLog: complete but not durable. It exists so unit tests run fast and
 * so the conformance suite is proved backend-agnostic; values go through a JSON round
 * trip, so callers see exactly what the LevelDB backend would give them.
 */
import { LogError, type NewEvent, type SessionMeta, type StoredEvent } from './session-log.js';
import type * as Log from './session-log.js';
import { checkCheckpoint, checkCheckpointHead, checkIfHead, checkWriteOptions, checkEvents, checkListLimit, checkMeta, checkPatch, checkSessionId, encode, mergeMeta, readRange, subscribeLimits, toStored } from './common.js';
import { LiveSubscriptions } from './subscriptions.js';
import { countWithin, eventBytes } from './event-bytes.js';
import { MemoryTokenStore } from './token-store.js';

interface MemorySession {
  meta: SessionMeta;
  events: StoredEvent[];
  checkpoint?: Log.Checkpoint;
}

export class MemorySessionLog implements Log.SessionLog {
  readonly supports: Log.SessionLogSupports = { durable: false, groupCommit: false, sharedWriters: false };
  private readonly sessions = new Map<string, MemorySession>();
  private readonly hub = new LiveSubscriptions((id, from, to, limit, maxBytes) => Promise.resolve(this.slice(id, from, to, limit, maxBytes)));
  private closed = false;
  readonly tokens = new MemoryTokenStore(() => this.checkOpen());

  async create(meta: SessionMeta, events: NewEvent[]): Promise<number[]> {
    this.checkOpen();
    checkMeta(meta);
    checkEvents(events);
    if (this.sessions.has(meta.sessionId)) throw new LogError('exists', `session ${meta.sessionId} already exists`);
    const session: MemorySession = { meta: JSON.parse(encode(meta, 'meta')) as SessionMeta, events: [] };
    const stored = this.stamp(0, events);
    this.sessions.set(meta.sessionId, session);
    return this.commit(meta.sessionId, session, stored);
  }

  async append(sessionId: string, events: NewEvent[], metaPatch?: Record<string, unknown>, options?: Log.WriteOptions): Promise<number[]> {
    this.checkOpen();
    checkWriteOptions(options, false);
    checkEvents(events);
    if (metaPatch !== undefined) checkPatch(metaPatch);
    const session = this.session(sessionId);
    checkIfHead(sessionId, options, session.events.length);
    const stored = this.stamp(session.events.length, events);
    // Both are computed before anything changes, so a bad patch leaves the session as it was.
    const meta = metaPatch === undefined ? session.meta : mergeMeta(session.meta, metaPatch, Date.now()).meta;
    session.meta = meta;
    const first = session.events.length;
    const seqs = this.commit(sessionId, session, stored);
    options?.onSequenced?.(first);
    return seqs;
  }

  async read(sessionId: string, options?: Log.ReadOptions): Promise<Log.ReadPage> {
    this.checkOpen();
    const session = this.session(sessionId);
    const head = session.events.length;
    const range = readRange(options, head);
    const events: StoredEvent[] = [];
    let seq = range.from;
    let bytes = 0;
    for (; seq < range.end && events.length < range.limit; seq++) {
      const event = session.events[seq]!;
      if (range.types && !range.types.has(event.type)) continue;
      bytes += eventBytes(event);
      if (bytes > range.maxBytes && events.length > 0) break;
      events.push(copy(event));
    }
    return seq < range.end ? { events, headSeq: head, next: seq } : { events, headSeq: head };
  }

  async head(sessionId: string): Promise<number> {
    this.checkOpen();
    return this.session(sessionId).events.length;
  }

  async subscribe(sessionId: string, from: number, listener: Log.SubscriptionListener, options?: Log.SubscribeOptions): Promise<Log.Subscription> {
    this.checkOpen();
    const limits = subscribeLimits(options);
    const start = readRange({ from }, this.session(sessionId).events.length).from;
    return this.hub.open(sessionId, start, listener, limits);
  }

  async getMeta(sessionId: string): Promise<SessionMeta | undefined> {
    this.checkOpen();
    checkSessionId(sessionId);
    const session = this.sessions.get(sessionId);
    return session ? copy(session.meta) : undefined;
  }

  async patchMeta(sessionId: string, patch: Record<string, unknown>, options?: Log.WriteOptions): Promise<SessionMeta> {
    this.checkOpen();
    checkWriteOptions(options, false);
    checkPatch(patch);
    const session = this.session(sessionId);
    checkIfHead(sessionId, options, session.events.length);
    session.meta = mergeMeta(session.meta, patch, Date.now()).meta;
    return copy(session.meta);
  }

  async list(options?: Log.ListOptions): Promise<Log.ListPage> {
    this.checkOpen();
    const limit = checkListLimit(options?.limit);
    // Ids are ASCII (checkSessionId), so code-unit order is LevelDB's byte order.
    const ids = [...this.sessions.keys()].filter((id) => options?.cursor === undefined || id < options.cursor).sort().reverse();
    const sessions: SessionMeta[] = [];
    const page = (cursor?: string): Log.ListPage => ({
      sessions,
      ...(options?.withHeads ? { heads: sessions.map((m) => this.sessions.get(m.sessionId)!.events.length) } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    for (const id of ids) {
      if (sessions.length >= limit) return page(sessions[sessions.length - 1]!.sessionId);
      const meta = copy(this.sessions.get(id)!.meta);
      if (!options?.filter || options.filter(meta)) sessions.push(meta);
    }
    return page();
  }

  async delete(sessionId: string): Promise<boolean> {
    this.checkOpen();
    checkSessionId(sessionId);
    if (!this.sessions.delete(sessionId)) return false;
    this.hub.endSession(sessionId, new LogError('not_found', `session ${sessionId} was deleted`));
    return true;
  }

  async count(): Promise<number> {
    this.checkOpen();
    return this.sessions.size;
  }

  async putCheckpoint(sessionId: string, checkpoint: Log.Checkpoint): Promise<boolean> {
    this.checkOpen();
    checkCheckpoint(checkpoint);
    const session = this.session(sessionId);
    checkCheckpointHead(sessionId, checkpoint, session.events.length);
    if (session.checkpoint && session.checkpoint.seq > checkpoint.seq) return false;
    session.checkpoint = { seq: checkpoint.seq, state: checkpoint.state };
    return true;
  }

  async getCheckpoint(sessionId: string): Promise<Log.Checkpoint | undefined> {
    this.checkOpen();
    const { checkpoint } = this.session(sessionId);
    return checkpoint && { ...checkpoint };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hub.closeAll();
  }

  private stamp(head: number, events: NewEvent[]): StoredEvent[] {
    const ts = Date.now();
    return events.map((event, i) => toStored(head + i, ts, event).stored);
  }

  private commit(sessionId: string, session: MemorySession, stored: StoredEvent[]): number[] {
    for (const event of stored) session.events.push(event);
    this.hub.publish(sessionId, stored.map(copy));
    return stored.map((e) => e.seq);
  }

  private slice(sessionId: string, from: number, to: number | undefined, limit: number, maxBytes: number): StoredEvent[] {
    const events = this.sessions.get(sessionId)?.events ?? [];
    const page = events.slice(from, Math.min(to ?? events.length, from + limit));
    return page.slice(0, countWithin(page, maxBytes)).map(copy);
  }

  private session(sessionId: string): MemorySession {
    checkSessionId(sessionId);
    const session = this.sessions.get(sessionId);
    if (!session) throw new LogError('not_found', `session ${sessionId} not found`);
    return session;
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('closed', 'session log is closed');
  }
}

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
