/**
 * The durable SessionLog on LevelDB (classic-level). Appends are acknowledged only after a
 * synced batch (group commit); heads and metadata are cached per session so an append
 * needs no read, and reads are iterator range reads over ordered keys.
 */
import { ClassicLevel } from 'classic-level';
import { LogError, type NewEvent, type SessionMeta, type StoredEvent } from './session-log.js';
import type * as Log from './session-log.js';
import { checkCheckpoint, checkCheckpointHead, checkIfHead, checkWriteOptions, checkEvents, checkListLimit, checkMeta, checkPatch, checkSessionId, encode, mergeMeta, readRange, subscribeLimits, WriteGate } from './common.js';
import { GroupCommit, storageError } from './group-commit.js';
import type { BatchPut, BatchWriter, CommitEntry, CommitStats } from './group-commit.js';
import { checkpointKey, eventKey, eventRangeEnd, META_END, META_FIRST, metaKey, seqOfEventKey, SESSION_COUNT_KEY } from './keys.js';
import { LiveSubscriptions } from './subscriptions.js';
import { parsedEvent } from './event-bytes.js';
import { BoundedCache } from './bounded-cache.js';
import { LevelTokenStore } from './token-store.js';

/** A filtered read scans at most this many events before it returns a page with `next`. */
const TYPE_SCAN_MAX = 100_000;
const SCAN_CHUNK = 1024;
/** Metadata is read in smaller chunks: each may carry a system prompt of up to 256 KiB. */
const META_CHUNK = 32;

export interface LevelLogOptions {
  /** Wraps the synced batch write; tests use it to fail a chosen batch. */
  wrapWrite?: (write: BatchWriter) => BatchWriter;
}

interface LevelEntry extends CommitEntry {
  ops: BatchPut[];
}

interface CachedSession {
  /** The seq the next enqueued event gets (includes appends not yet durable). */
  head: number;
  /** Events [0, durableHead) are durable and published. */
  durableHead: number;
  /** Latest metadata including queued patches: patches merge against it, in call order. */
  meta: SessionMeta;
  /** The durable metadata, with its JSON as stored (getMeta parses that: about half the cost of cloning the object). */
  durableMeta: StoredMeta | undefined;
  /** Cleared when a failed batch leaves this cache stale, or when it is evicted; holders must load afresh. */
  valid: boolean;
  /** Size of the metadata as stored, for the cache's byte bound. */
  metaBytes: number;
  /** The seq of the checkpoint kept (-1: none), once looked up. */
  checkpointSeq?: number;
}

/** Metadata with the JSON it is stored as. */
interface StoredMeta {
  value: SessionMeta;
  json: string;
}

/** Sessions whose state stays cached, by count and by metadata bytes; idle ones beyond are dropped, least recently used first. */
const STATE_CACHE_SESSIONS = 1024;
const STATE_CACHE_BYTES = 32 * 1024 * 1024;

/** A state with nothing queued: dropping it loses nothing the store does not have. */
const idle = (s: CachedSession) => s.head === s.durableHead && s.meta === s.durableMeta?.value;

export class LevelSessionLog implements Log.SessionLog {
  readonly supports: Log.SessionLogSupports = { durable: true, groupCommit: true, sharedWriters: false };
  private readonly states = new BoundedCache<string, CachedSession>(STATE_CACHE_SESSIONS, STATE_CACHE_BYTES, idle, (_, state) => (state.valid = false));
  private readonly loads = new Map<string, Promise<CachedSession | undefined>>();
  private readonly hub = new LiveSubscriptions((id, from, to, limit, maxBytes) => this.readRange(id, from, to, limit, maxBytes));
  private readonly commits: GroupCommit<LevelEntry>;
  private readonly gate = new WriteGate();
  private closing: Promise<void> | undefined;
  /**
   * A batch failed: LevelDB refuses every later write (its background error sticks) until
   * the store is reopened, which the next call does, so a disk that was full and has
   * room again works again without restarting the daemon.
   */
  private failed = false;
  private reopening: Promise<void> | undefined;
  readonly tokens = new LevelTokenStore(
    async () => {
      if (this.failed) await this.reopen();
      return this.db;
    },
    (op) => this.gate.admit(op),
    () => this.checkOpen(),
  );
  /** Sessions counting creates queued, and counting durable ones (what count() says). */
  private sessionsQueued = 0;
  private sessionsDurable = 0;
  /** Checkpoint writes in flight, one at a time per session: each compares with the one before. */
  private readonly checkpointWrites = new Map<string, Promise<unknown>>();

  private constructor(
    private db: ClassicLevel<string, string>,
    private readonly location: string,
    options: LevelLogOptions,
  ) {
    const synced: BatchWriter = (ops) => this.writeSynced(ops);
    const write = options.wrapWrite ? options.wrapWrite(synced) : synced;
    this.commits = new GroupCommit<LevelEntry>((batch) => {
      const ops: BatchPut[] = [];
      for (const entry of batch) for (const op of entry.ops) ops.push(op);
      return write(ops);
    }, (ids) => this.forget(ids));
  }

  /** Opens (creating if missing) the log stored in directory `location`. */
  static async open(location: string, options: LevelLogOptions = {}): Promise<LevelSessionLog> {
    const log = new LevelSessionLog(await openStore(location), location, options);
    await log.loadCount().catch(async (error: unknown) => {
      await log.db.close();
      throw error;
    });
    return log;
  }

  create(meta: SessionMeta, events: NewEvent[]): Promise<number[]> {
    return this.gate.admit(() => this.whenReady(() => this.createNow(meta, events)));
  }

  append(sessionId: string, events: NewEvent[], metaPatch?: Record<string, unknown>, options?: Log.WriteOptions): Promise<number[]> {
    return this.gate.admit(() => {
      checkWriteOptions(options, false);
      return this.whenReady(() => this.appendNow(sessionId, events, metaPatch, options));
    });
  }

  patchMeta(sessionId: string, patch: Record<string, unknown>, options?: Log.WriteOptions): Promise<SessionMeta> {
    return this.gate.admit(() => {
      checkWriteOptions(options, false);
      return this.whenReady(() => this.patchMetaNow(sessionId, patch, options));
    });
  }

  /** Runs `op` at once, or after reopening the store when a write failed. */
  private whenReady<T>(op: () => Promise<T>): Promise<T> {
    return this.failed ? this.reopen().then(op) : op();
  }

  private reopen(): Promise<void> {
    this.reopening ??= (async () => {
      // Writes queued on the broken store go first (and fail); then a fresh handle.
      await this.commits.drain();
      await this.db.close().catch(() => undefined);
      this.db = await openStore(this.location);
      await this.loadCount();
      this.failed = false;
    })().finally(() => (this.reopening = undefined));
    return this.reopening;
  }

  private async createNow(meta: SessionMeta, events: NewEvent[]): Promise<number[]> {
    checkMeta(meta);
    checkEvents(events);
    const id = meta.sessionId;
    const metaJson = encode(meta, 'meta');
    const stored = JSON.parse(metaJson) as SessionMeta;
    const { ops, jsons } = this.eventOps(id, 0, events);
    ops.push({ type: 'put', key: metaKey(id), value: metaJson });
    for (;;) {
      const existing = await this.session(id);
      if (existing?.valid) throw new LogError('exists', `session ${id} already exists`);
      if (!existing) break;
    }
    // Re-checked after the await: another create may have claimed the id meanwhile.
    if (this.states.has(id)) throw new LogError('exists', `session ${id} already exists`);
    const state: CachedSession = { head: events.length, durableHead: 0, meta: stored, durableMeta: undefined, valid: true, metaBytes: metaJson.length, checkpointSeq: -1 };
    this.states.set(id, state, state.metaBytes);
    // The counter goes in the create's own batch: counted exactly when the session is there.
    const count = ++this.sessionsQueued;
    ops.push({ type: 'put', key: SESSION_COUNT_KEY, value: String(count) });
    return this.commit(id, state, 0, ops, jsons, { value: stored, json: metaJson }, () => (this.sessionsDurable = Math.max(this.sessionsDurable, count)));
  }

  private async appendNow(sessionId: string, events: NewEvent[], metaPatch: Record<string, unknown> | undefined, options: Log.WriteOptions | undefined): Promise<number[]> {
    checkSessionId(sessionId);
    checkEvents(events);
    if (metaPatch !== undefined) checkPatch(metaPatch);
    let state = await this.existing(sessionId, true);
    // Re-checked after the last await, in the tick of the enqueue: a batch failure landing
    // in between leaves the cached head stale.
    while (!state.valid) state = await this.existing(sessionId, true);
    checkIfHead(sessionId, options, state.head);
    if (events.length === 0 && metaPatch === undefined) return [];
    const first = state.head;
    // Everything that can throw runs before the state moves, so a bad call changes nothing.
    const { ops, jsons } = this.eventOps(sessionId, first, events);
    const merged = metaPatch === undefined ? undefined : mergeMeta(state.meta, metaPatch, Date.now());
    if (merged) ops.push({ type: 'put', key: metaKey(sessionId), value: merged.json });
    state.head += events.length;
    if (merged) this.setMeta(sessionId, state, merged.meta, merged.json.length);
    const durable = this.commit(sessionId, state, first, ops, jsons, merged && { value: merged.meta, json: merged.json });
    options?.onSequenced?.(first);
    return durable;
  }

  async read(sessionId: string, options?: Log.ReadOptions): Promise<Log.ReadPage> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    checkSessionId(sessionId);
    const state = await this.existing(sessionId, false);
    const headSeq = state.durableHead;
    const range = readRange(options, headSeq);
    if (!range.types) {
      const events = await this.readRange(sessionId, range.from, range.end, range.limit, range.maxBytes);
      const reached = range.from + events.length;
      return reached < range.end ? { events, headSeq, next: reached } : { events, headSeq };
    }
    const { events, reached } = await this.readTypes(sessionId, range.from, range.end, range.limit, range.types, range.maxBytes);
    return reached < range.end ? { events, headSeq, next: reached } : { events, headSeq };
  }

  async head(sessionId: string): Promise<number> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    checkSessionId(sessionId);
    return (await this.existing(sessionId, false)).durableHead;
  }

  async subscribe(sessionId: string, from: number, listener: Log.SubscriptionListener, options?: Log.SubscribeOptions): Promise<Log.Subscription> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    checkSessionId(sessionId);
    const limits = subscribeLimits(options);
    const state = await this.existing(sessionId, false);
    this.checkOpen();
    // No await between reading the durable head and registering: no publish slips between.
    const start = readRange({ from }, state.durableHead).from;
    return this.hub.open(sessionId, start, listener, limits);
  }

  async getMeta(sessionId: string): Promise<SessionMeta | undefined> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    checkSessionId(sessionId);
    const state = await this.validSession(sessionId);
    return state?.durableMeta === undefined ? undefined : (JSON.parse(state.durableMeta.json) as SessionMeta);
  }

  private async patchMetaNow(sessionId: string, patch: Record<string, unknown>, options: Log.WriteOptions | undefined): Promise<SessionMeta> {
    checkSessionId(sessionId);
    checkPatch(patch);
    let state = await this.existing(sessionId, true);
    while (!state.valid) state = await this.existing(sessionId, true);
    checkIfHead(sessionId, options, state.head);
    const { meta, json: metaJson } = mergeMeta(state.meta, patch, Date.now());
    this.setMeta(sessionId, state, meta, metaJson.length);
    await this.commit(sessionId, state, state.head, [{ type: 'put', key: metaKey(sessionId), value: metaJson }], [], { value: meta, json: metaJson });
    return JSON.parse(metaJson) as SessionMeta;
  }

  async list(options?: Log.ListOptions): Promise<Log.ListPage> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    const page = await this.scanMeta(options);
    if (!options?.withHeads) return page;
    // Heads are cached per session after the first look: no read for a session in use.
    return { ...page, heads: await Promise.all(page.sessions.map((meta) => this.head(meta.sessionId))) };
  }

  private async scanMeta(options: Log.ListOptions | undefined): Promise<Log.ListPage> {
    const limit = checkListLimit(options?.limit);
    const lt = options?.cursor === undefined ? META_END : metaKey(options.cursor);
    const sessions: SessionMeta[] = [];
    const it = this.db.values({ gte: META_FIRST, lt, reverse: true });
    try {
      for (;;) {
        const chunk = await it.nextv(META_CHUNK);
        if (chunk.length === 0) return { sessions };
        for (const value of chunk) {
          if (sessions.length >= limit) return { sessions, cursor: sessions[sessions.length - 1]!.sessionId };
          const meta = JSON.parse(value) as SessionMeta;
          if (!options?.filter || options.filter(meta)) sessions.push(meta);
        }
      }
    } catch (cause) {
      // A throwing filter is the caller's error, not the store's.
      throw isLevelError(cause) ? storageError(cause, 'read') : cause;
    } finally {
      await it.close();
    }
  }

  delete(sessionId: string): Promise<boolean> {
    return this.gate.admit(() => this.whenReady(() => this.deleteNow(sessionId)));
  }

  /**
   * The metadata goes first, in a synced write: from then on the session does not exist,
   * whatever happens to the range delete of its events after it (events without metadata
   * are never read; ids are never reused).
   */
  private async deleteNow(sessionId: string): Promise<boolean> {
    checkSessionId(sessionId);
    const state = await this.validSession(sessionId);
    if (!state || state.durableMeta === undefined) return false;
    // Appends queued before the delete land first; the caller lets nobody write after it.
    await this.commits.drain();
    // The counter and the checkpoint go in the same synced batch as the metadata.
    const count = --this.sessionsQueued;
    try {
      await this.db.batch(
        [
          { type: 'del', key: metaKey(sessionId) },
          { type: 'del', key: checkpointKey(sessionId) },
          { type: 'put', key: SESSION_COUNT_KEY, value: String(count) },
        ],
        { sync: true },
      );
    } catch (cause) {
      this.sessionsQueued++;
      throw storageError(cause, 'write');
    }
    this.sessionsDurable--;
    try {
      this.states.delete(sessionId);
      await this.db.clear({ gte: eventKey(sessionId, 0), lt: eventRangeEnd(sessionId) });
    } catch (cause) {
      throw storageError(cause, 'write');
    }
    this.hub.endSession(sessionId, new LogError('not_found', `session ${sessionId} was deleted`));
    return true;
  }

  async count(): Promise<number> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    return this.sessionsDurable;
  }

  putCheckpoint(sessionId: string, checkpoint: Log.Checkpoint): Promise<boolean> {
    return this.gate.admit(() => {
      checkSessionId(sessionId);
      checkCheckpoint(checkpoint);
      const previous = this.checkpointWrites.get(sessionId) ?? Promise.resolve();
      const write = previous.then(() => this.whenReady(() => this.putCheckpointNow(sessionId, checkpoint)));
      const settled = write.catch(() => undefined);
      this.checkpointWrites.set(sessionId, settled);
      void settled.then(() => this.checkpointWrites.get(sessionId) === settled && this.checkpointWrites.delete(sessionId));
      return write;
    });
  }

  private async putCheckpointNow(sessionId: string, checkpoint: Log.Checkpoint): Promise<boolean> {
    const state = await this.existing(sessionId, false);
    checkCheckpointHead(sessionId, checkpoint, state.durableHead);
    state.checkpointSeq ??= (await this.readCheckpoint(sessionId))?.seq ?? -1;
    if (state.checkpointSeq > checkpoint.seq) return false;
    // One put is one atomic LevelDB write; unsynced, as the interface allows (a lost
    // checkpoint costs a longer read on wake, and never holds up a synced append).
    try {
      await this.db.put(checkpointKey(sessionId), `${checkpoint.seq} ${checkpoint.state}`);
    } catch (cause) {
      throw storageError(cause);
    }
    state.checkpointSeq = checkpoint.seq;
    return true;
  }

  async getCheckpoint(sessionId: string): Promise<Log.Checkpoint | undefined> {
    this.checkOpen();
    if (this.failed) await this.reopen();
    checkSessionId(sessionId);
    await this.existing(sessionId, false);
    return this.readCheckpoint(sessionId);
  }

  private async readCheckpoint(sessionId: string): Promise<Log.Checkpoint | undefined> {
    let value: string | undefined;
    try {
      value = await this.db.get(checkpointKey(sessionId));
    } catch (cause) {
      throw storageError(cause, 'read');
    }
    if (value === undefined) return undefined;
    const space = value.indexOf(' ');
    return { seq: Number(value.slice(0, space)), state: value.slice(space + 1) };
  }

  /** The session counter as stored; a store from before it had one is counted once, and keeps one from then on. */
  private async loadCount(): Promise<void> {
    let stored = await this.db.get(SESSION_COUNT_KEY);
    if (stored === undefined) {
      let n = 0;
      const it = this.db.keys({ gte: META_FIRST, lt: META_END });
      try {
        for (let chunk = await it.nextv(SCAN_CHUNK); chunk.length > 0; chunk = await it.nextv(SCAN_CHUNK)) n += chunk.length;
      } finally {
        await it.close();
      }
      stored = String(n);
      await this.db.put(SESSION_COUNT_KEY, stored, { sync: true });
    }
    this.sessionsQueued = this.sessionsDurable = Number(stored);
  }

  /** Sessions whose state is cached now (bounded: see STATE_CACHE_SESSIONS). */
  get cachedSessions(): number {
    return this.states.size;
  }

  /** Synced batches written and appends they carried, since open. */
  commitStats(): CommitStats {
    return { ...this.commits.stats };
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      // Writes called before close finish (or fail) first; each ends in the commit queue.
      await this.gate.close();
      await this.reopening?.catch(() => undefined);
      await this.commits.drain();
      this.hub.closeAll();
      await this.db.close();
    })();
    return this.closing;
  }

  /**
   * One synced LevelDB write. A chained batch costs about a quarter of the CPU of
   * db.batch(array) here (no per-op option spreading), which is most of an append's cost.
   */
  private async writeSynced(ops: BatchPut[]): Promise<void> {
    const batch = this.db.batch();
    try {
      for (const op of ops) batch.put(op.key, op.value);
    } catch (error) {
      await batch.close();
      throw error;
    }
    await batch.write({ sync: true });
  }

  private eventOps(sessionId: string, first: number, events: NewEvent[]): { ops: BatchPut[]; jsons: string[] } {
    const ts = Date.now();
    const ops: BatchPut[] = [];
    const jsons: string[] = [];
    for (const [i, event] of events.entries()) {
      const json = encode({ seq: first + i, ts, type: event.type, data: event.data }, `event ${event.type}`);
      ops.push({ type: 'put', key: eventKey(sessionId, first + i), value: json });
      jsons.push(json);
    }
    return { ops, jsons };
  }

  /** Queues one append; resolves with its seqs once its batch is durable. */
  private commit(sessionId: string, state: CachedSession, first: number, ops: BatchPut[], jsons: string[], meta: StoredMeta | undefined, durable?: () => void): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.commits.enqueue({
        sessionId,
        ops,
        onDurable: () => {
          state.durableHead = Math.max(state.durableHead, first + jsons.length);
          if (meta) state.durableMeta = meta;
          durable?.();
          // Idle now, perhaps: the cache may drop something to stay within its bounds.
          this.states.evict();
          // Parsed only when someone listens: the append path stays string-only.
          if (jsons.length > 0) this.hub.publish(sessionId, jsons.map(parsedEvent));
          resolve(jsons.map((_, i) => first + i));
        },
        onFail: reject,
      });
    });
  }

  private setMeta(sessionId: string, state: CachedSession, meta: SessionMeta, bytes: number): void {
    state.meta = meta;
    state.metaBytes = bytes;
    this.states.resize(sessionId, bytes);
  }

  /** After a failed batch: drop the cached state so the next call reloads what is durable. */
  private forget(sessionIds: ReadonlySet<string>): void {
    this.failed = true;
    for (const id of sessionIds) {
      const state = this.states.get(id);
      if (state) state.valid = false;
      this.states.delete(id);
    }
  }

  /**
   * A session that exists. `pending` admits one whose create is still being written, so
   * an append issued right after create queues behind it; readers see only durable ones.
   */
  private async existing(sessionId: string, pending: boolean): Promise<CachedSession> {
    const state = await this.validSession(sessionId);
    if (!state || (!pending && state.durableMeta === undefined)) throw new LogError('not_found', `session ${sessionId} not found`);
    return state;
  }

  private async validSession(sessionId: string): Promise<CachedSession | undefined> {
    for (;;) {
      const state = await this.session(sessionId);
      if (!state || state.valid) return state;
    }
  }

  /** Cached state, loaded once per session by a meta get and a reverse read of the last key. */
  private async session(sessionId: string): Promise<CachedSession | undefined> {
    const cached = this.states.get(sessionId);
    if (cached) return cached;
    let load = this.loads.get(sessionId);
    if (!load) {
      load = this.load(sessionId).finally(() => this.loads.delete(sessionId));
      this.loads.set(sessionId, load);
    }
    const loaded = await load;
    const again = this.states.get(sessionId);
    if (again) return again;
    if (loaded) this.states.set(sessionId, loaded, loaded.metaBytes);
    return loaded;
  }

  private async load(sessionId: string): Promise<CachedSession | undefined> {
    try {
      const [metaJson, last] = await Promise.all([
        this.db.get(metaKey(sessionId)),
        this.db.keys({ gte: eventKey(sessionId, 0), lt: eventRangeEnd(sessionId), reverse: true, limit: 1 }).all(),
      ]);
      if (metaJson === undefined) return undefined;
      const head = last.length > 0 ? seqOfEventKey(last[0]!) + 1 : 0;
      const meta = JSON.parse(metaJson) as SessionMeta;
      return { head, durableHead: head, meta, durableMeta: { value: meta, json: metaJson }, valid: true, metaBytes: metaJson.length };
    } catch (cause) {
      throw storageError(cause, 'read');
    }
  }

  /** Events [from, min(to, end of durable)) up to `limit` and about `maxBytes`: one iterator range read. */
  private async readRange(sessionId: string, from: number, to: number | undefined, limit: number, maxBytes = Infinity): Promise<StoredEvent[]> {
    const durable = (await this.validSession(sessionId))?.durableHead ?? 0;
    const end = Math.min(to ?? durable, durable);
    if (end <= from) return [];
    return this.scan(sessionId, from, end, (event, events) => events.length < limit && (events.push(event), true), maxBytes, limit).then((r) => r.events);
  }

  /** A filtered read: scans in chunks and stops at `limit` matches, `maxBytes` of them, or TYPE_SCAN_MAX scanned. */
  private readTypes(sessionId: string, from: number, end: number, limit: number, types: ReadonlySet<string>, maxBytes: number): Promise<{ events: StoredEvent[]; reached: number }> {
    if (end <= from) return Promise.resolve({ events: [], reached: from });
    return this.scan(sessionId, from, end, (event, events) => {
      if (event.seq - from >= TYPE_SCAN_MAX || events.length >= limit) return false;
      if (types.has(event.type)) events.push(event);
      return true;
    }, maxBytes);
  }

  /**
   * Iterates events [from, end) in chunks, offering each to `take` (false: stop before
   * it). Stops past `maxBytes` of taken events, measured on the stored strings before
   * they are parsed. `reached` is the seq after the last event looked at.
   */
  private async scan(sessionId: string, from: number, end: number, take: (event: StoredEvent, events: StoredEvent[]) => boolean, maxBytes: number, maxItems?: number): Promise<{ events: StoredEvent[]; reached: number }> {
    const events: StoredEvent[] = [];
    let reached = from;
    let bytes = 0;
    const it = this.db.values({ gte: eventKey(sessionId, from), lt: eventKey(sessionId, end), ...(maxItems !== undefined ? { limit: maxItems } : {}) });
    try {
      for (;;) {
        const chunk = await it.nextv(Math.min(SCAN_CHUNK, maxItems ?? SCAN_CHUNK));
        if (chunk.length === 0) return { events, reached };
        for (const json of chunk) {
          if (events.length > 0 && bytes + json.length > maxBytes) return { events, reached };
          const before = events.length;
          const event = parsedEvent(json);
          if (!take(event, events)) return { events, reached };
          if (events.length > before) bytes += json.length;
          reached = event.seq + 1;
        }
      }
    } catch (cause) {
      throw storageError(cause, 'read');
    } finally {
      await it.close();
    }
  }

  private checkOpen(): void {
    if (this.closing) throw new LogError('closed', 'session log is closed');
  }
}

async function openStore(location: string): Promise<ClassicLevel<string, string>> {
  const db = new ClassicLevel<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  try {
    await db.open();
  } catch (cause) {
    throw new LogError('storage', `cannot open session log at ${location}: ${(cause as Error).message}`, { cause });
  }
  return db;
}

/** Whether opening failed because another process holds the store (LevelDB's LOCK file). */
export function isLevelLocked(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 'LEVEL_LOCKED' || /\block\b|LOCK:/i.test(e.message)) return true;
  }
  return false;
}

function isLevelError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && String((error as { code: unknown }).code).startsWith('LEVEL_');
}
