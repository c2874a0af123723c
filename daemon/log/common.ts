/**
 * Argument checks and small pure helpers shared by every SessionLog backend, so that
 * backends differ only in storage and agree on every edge case the conformance suite checks.
 */
import { LogError, READ_LIMIT_MAX } from './session-log.js';
import type { Checkpoint, NewEvent, ReadOptions, SessionMeta, StoredEvent, SubscribeOptions, WriteOptions } from './session-log.js';

/** Printable ASCII without '!' (the key separator) or space: keeps key ranges unambiguous. */
const SESSION_ID = /^[\x22-\x7e]{1,200}$/;

export function checkSessionId(sessionId: unknown): asserts sessionId is string {
  if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) {
    throw new LogError('invalid', `invalid session id ${JSON.stringify(sessionId)}: expected 1-200 printable ASCII characters without '!' or space`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function checkEvents(events: unknown): asserts events is NewEvent[] {
  if (!Array.isArray(events)) throw new LogError('invalid', 'events must be an array');
  for (const [i, event] of events.entries()) {
    if (!isPlainObject(event)) throw new LogError('invalid', `events[${i}] must be an object`);
    if (typeof event['type'] !== 'string' || event['type'] === '') throw new LogError('invalid', `events[${i}].type must be a non-empty string`);
    if (!isPlainObject(event['data'])) throw new LogError('invalid', `events[${i}].data must be a plain object`);
  }
}

/** Checks write options; a backend with a single writer has no leases to check a fence against. */
export function checkWriteOptions(options: WriteOptions | undefined, sharedWriters: boolean): void {
  if (options === undefined) return;
  if (!isPlainObject(options)) throw new LogError('invalid', 'write options must be a plain object');
  const { fence, ifHead } = options as WriteOptions;
  if (fence !== undefined && !sharedWriters) throw new LogError('invalid', 'this session log has one writer and no leases: a fence cannot be checked');
  if (ifHead !== undefined && (!Number.isSafeInteger(ifHead) || ifHead < 0)) throw new LogError('invalid', 'ifHead must be a non-negative integer');
}

/** The conditional-write check, for backends that know the head when they write. */
export function checkIfHead(sessionId: string, options: WriteOptions | undefined, head: number): void {
  if (options?.ifHead !== undefined && options.ifHead !== head) {
    throw new LogError('conflict', `session ${sessionId} moved on (head ${head}, expected ${options.ifHead}); nothing was written`);
  }
}

export function checkCheckpoint(checkpoint: unknown): asserts checkpoint is Checkpoint {
  if (!isPlainObject(checkpoint)) throw new LogError('invalid', 'checkpoint must be a plain object');
  checkSeq(checkpoint['seq'], 'checkpoint.seq');
  if (typeof checkpoint['seq'] !== 'number') throw new LogError('invalid', 'checkpoint.seq must be a non-negative integer');
  if (typeof checkpoint['state'] !== 'string') throw new LogError('invalid', 'checkpoint.state must be a string');
}

/** A checkpoint may cover only events that are there. */
export function checkCheckpointHead(sessionId: string, checkpoint: Checkpoint, head: number): void {
  if (checkpoint.seq > head) throw new LogError('invalid', `checkpoint of ${sessionId} at seq ${checkpoint.seq} is past the head ${head}`);
}

export function checkPatch(patch: unknown): asserts patch is Record<string, unknown> {
  if (!isPlainObject(patch)) throw new LogError('invalid', 'meta patch must be a plain object');
  if ('sessionId' in patch) throw new LogError('invalid', 'meta patch may not change sessionId');
}

export function checkMeta(meta: unknown): asserts meta is SessionMeta {
  if (!isPlainObject(meta)) throw new LogError('invalid', 'meta must be a plain object');
  checkSessionId(meta['sessionId']);
  if (typeof meta['createdAt'] !== 'number' || typeof meta['updatedAt'] !== 'number') {
    throw new LogError('invalid', 'meta.createdAt and meta.updatedAt must be numbers');
  }
}

/**
 * Serialises `value` as stored. Failing here (cycles, BigInt) keeps a bad event from
 * taking a whole group commit down with it.
 */
export function encode(value: unknown, what: string): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new LogError('invalid', `${what} is not JSON-serialisable: ${(error as Error).message}`, { cause: error });
  }
}

/** A stored copy: JSON round trip, so every backend returns exactly what LevelDB would. */
export function toStored(seq: number, ts: number, event: NewEvent): { stored: StoredEvent; json: string } {
  const json = encode({ seq, ts, type: event.type, data: event.data }, `event ${event.type}`);
  return { stored: JSON.parse(json) as StoredEvent, json };
}

/**
 * Merges a patch the documented way: `undefined` deletes a key; `updatedAt` moves forward.
 * With the merged record's JSON, which is what a backend stores: serialised once.
 */
export function mergeMeta(meta: SessionMeta, patch: Record<string, unknown>, now: number): { meta: SessionMeta; json: string } {
  const merged: SessionMeta = { ...meta };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  merged.sessionId = meta.sessionId;
  if (typeof merged.createdAt !== 'number') merged.createdAt = meta.createdAt;
  // Bumped unless the patch set it explicitly; never moves backwards with a skewed clock.
  if (!('updatedAt' in patch) || typeof patch['updatedAt'] !== 'number') merged.updatedAt = Math.max(now, meta.updatedAt);
  const json = encode(merged, 'meta');
  return { meta: JSON.parse(json) as SessionMeta, json };
}

export interface ReadRange {
  from: number;
  /** Exclusive end: min(to, head). */
  end: number;
  limit: number;
  types: ReadonlySet<string> | undefined;
  maxBytes: number;
}

function checkSeq(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new LogError('invalid', `${name} must be a non-negative integer`);
  }
  return value;
}

/** Resolves options against the head; `from` past the head gives an empty range at the head. */
export function readRange(options: ReadOptions | undefined, head: number): ReadRange {
  const from = checkSeq(options?.from, 'from') ?? 0;
  const to = checkSeq(options?.to, 'to');
  const limitIn = options?.limit;
  if (limitIn !== undefined && (typeof limitIn !== 'number' || !Number.isSafeInteger(limitIn) || limitIn < 1)) {
    throw new LogError('invalid', 'limit must be a positive integer');
  }
  const types = options?.types;
  if (types !== undefined && (!Array.isArray(types) || types.some((t) => typeof t !== 'string'))) {
    throw new LogError('invalid', 'types must be an array of strings');
  }
  const end = Math.min(to ?? head, head);
  return {
    from: Math.min(from, end),
    end,
    limit: Math.min(limitIn ?? READ_LIMIT_MAX, READ_LIMIT_MAX),
    types: types === undefined ? undefined : new Set(types),
    maxBytes: positive(options?.maxBytes, 'maxBytes') ?? Infinity,
  };
}

function positive(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new LogError('invalid', `${name} must be a positive integer`);
  return value;
}

export function checkListLimit(limit: unknown): number {
  if (limit === undefined) return Infinity;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) throw new LogError('invalid', 'limit must be a positive integer');
  return limit;
}

/** Options for subscribe, with the documented defaults. */
export function subscribeLimits(options: SubscribeOptions | undefined): Required<SubscribeOptions> {
  return {
    maxPending: positive(options?.maxPending, 'maxPending') ?? 10000,
    maxPendingBytes: positive(options?.maxPendingBytes, 'maxPendingBytes') ?? Infinity,
    batchSize: Math.min(positive(options?.batchSize, 'batchSize') ?? 512, READ_LIMIT_MAX),
    maxBatchBytes: positive(options?.maxBatchBytes, 'maxBatchBytes') ?? Infinity,
  };
}

/**
 * The writes a backend admitted and that have not settled, so that close() lets them
 * finish (or fail) first and refuses any that come after.
 */
export class WriteGate {
  private readonly writes = new Set<Promise<unknown>>();
  private closed = false;

  /** Runs `op` unless closed; a synchronous throw (a bad argument) becomes a rejection. */
  admit<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new LogError('closed', 'session log is closed'));
    let promise: Promise<T>;
    try {
      promise = op();
    } catch (error) {
      return Promise.reject(error);
    }
    this.writes.add(promise);
    const done = (): void => void this.writes.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Refuses new writes, then waits for the admitted ones. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }
}
