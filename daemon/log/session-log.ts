/**
 * The session log: an append-only, durable event log per session. This file is the
 * whole interface the rest of the daemon sees; backends live beside it and all pass
 * one conformance suite (test/log-conformance.ts).
 */

/** An event as the writer hands it in: the log assigns `seq` and `ts`. */
export interface NewEvent {
  type: string;
  data: Record<string, unknown>;
}

/** An event as stored and read back. */
export interface StoredEvent {
  seq: number;
  ts: number;
  type: string;
  data: Record<string, unknown>;
}

/** Session metadata kept beside the events, for listing without reading logs. */
export interface SessionMeta {
  sessionId: string;
  createdAt: number;
  updatedAt: number;
  /** Everything else the daemon keeps (title, workspace, status, usage, ...). */
  [key: string]: unknown;
}

export interface ReadOptions {
  /** First seq to return (default 0). */
  from?: number;
  /** Stop before this seq (default: the head). */
  to?: number;
  /** At most this many events (default and maximum: READ_LIMIT_MAX). */
  limit?: number;
  /** Only events of these types; `next` still moves past the skipped ones. */
  types?: readonly string[];
  /**
   * Stop once the page holds this many bytes of events (their stored JSON); a page has
   * at least one event, so `next` always moves.
   */
  maxBytes?: number;
}

export interface ReadPage {
  events: StoredEvent[];
  /** The seq the next appended event will get: the session has [0, headSeq). */
  headSeq: number;
  /** Set when the page stopped before `to` (or the head): read on from here. */
  next?: number;
}

export interface ListOptions {
  limit?: number;
  /** Opaque; from a previous page's `cursor`. */
  cursor?: string;
  /** Keep only sessions whose meta passes this test (applied before `limit`). */
  filter?: (meta: SessionMeta) => boolean;
  /** Also give each listed session's head, saving a head() call per session. */
  withHeads?: boolean;
}

export interface ListPage {
  sessions: SessionMeta[];
  /** With `withHeads`: the head of each session, in the same order. */
  heads?: number[];
  cursor?: string;
}

/**
 * Receives events in seq order, one batch at a time. The next batch is not delivered
 * until the returned promise settles, so a slow listener holds its subscription back
 * (and may overflow it) instead of flooding memory.
 */
export type SubscriptionListener = (events: StoredEvent[]) => void | Promise<void>;

export type SubscriptionEnd =
  | { reason: 'closed'; next: number }
  /** More than `maxPending` live events (or `maxPendingBytes` of them) waited for a slow listener. */
  | { reason: 'overflow'; next: number }
  | { reason: 'error'; next: number; error: Error };

export interface SubscribeOptions {
  /** Live events that may wait for the listener before the subscription ends with `overflow`. */
  maxPending?: number;
  /** The same, in bytes of events (their stored JSON). */
  maxPendingBytes?: number;
  /** Events per batch. */
  batchSize?: number;
  /** Bytes of events per batch (a batch has at least one event). */
  maxBatchBytes?: number;
}

export interface Subscription {
  /** Ends the subscription; no batch is delivered after this returns. */
  close(): void;
  /** Settles once, when the subscription ends for any reason, with where to resume. */
  readonly ended: Promise<SubscriptionEnd>;
}

/**
 * The lease a writer holds on a session (see leases.ts). An append or
 * patch carrying it commits only while that lease is current; otherwise it fails with
 * LogError('fenced') and writes nothing.
 */
export interface Fence {
  holder: string;
  epoch: number;
}

/** Conditions on a write; a write whose condition fails writes nothing. */
export interface WriteOptions {
  /** Commit only while this lease is current, else LogError('fenced'). */
  fence?: Fence;
  /** Commit only if the session's head is still this (nothing appended since the caller looked), else LogError('conflict'). */
  ifHead?: number;
  /**
   * Called with the first seq of the append once its seqs are assigned, before it is
   * durable: a harness may start work on events it knows will land there, holding
   * every side effect until the append resolves. Logs with one writer call it (LevelDB,
   * memory); a shared log does not.
   */
  onSequenced?(firstSeq: number): void;
}

/**
 * A checkpoint of a session, kept beside its log (never in it): what a reader derived from
 * events [0, seq), so that it can resume from there and read only the events after it.
 * The log stores it as it is given and knows nothing of its format: `state` carries its
 * own version, and a reader that cannot use it reads the whole log instead.
 */
export interface Checkpoint {
  /** The state covers events [0, seq); seq is never past the session's head. */
  seq: number;
  state: string;
}

export interface SessionLogSupports {
  /** Acknowledged appends survive a crash of the process (and of the machine, where the disk honours fsync). */
  durable: boolean;
  /** Concurrent appends are committed together in one synced write. */
  groupCommit: boolean;
  /** Several processes may write one session (dense seqs still), and writes may carry a Fence. */
  sharedWriters: boolean;
}

/**
 * An access token as stored (daemon/tokens.ts): its hash, never the token. A web login
 * (the browser's session cookie) is a record of its own whose `parent` is the token it
 * was exchanged for.
 */
export interface StoredToken {
  /** `tok_` or `web_` and 16 hex digits of the hash: public, what `agentd token revoke` takes. */
  id: string;
  /** Hex SHA-256 of the token. */
  hash: string;
  name: string;
  role: 'observer' | 'controller';
  /** The sessions it is scoped to; null: all. */
  sessions: string[] | null;
  createdAt: number;
  expiresAt: number | null;
  /** A web login: the token it was made with. */
  parent: string | null;
}

/**
 * Token records, kept beside the sessions so that every daemon sharing a log accepts
 * the same tokens. Primitives only: TokenService checks and interprets them.
 */
export interface TokenStore {
  /** Stores a new record durably; LogError('exists') when its id is taken (nothing changes then). */
  put(token: StoredToken): Promise<void>;
  get(id: string): Promise<StoredToken | undefined>;
  /** Every record, in id order. */
  list(): Promise<StoredToken[]>;
  /** Removes these records durably; resolves with how many there were. */
  delete(ids: readonly string[]): Promise<number>;
}

export interface SessionLog {
  readonly supports: SessionLogSupports;
  /** Access tokens for the network listener. */
  readonly tokens: TokenStore;

  /**
   * Creates a session with its metadata and first events, atomically.
   * Fails with LogError('exists') if the id is taken.
   */
  create(meta: SessionMeta, events: NewEvent[]): Promise<number[]>;

  /**
   * Appends events to a session, atomically with an optional metadata patch.
   * Resolves with their seqs only once they are durable; a rejected append wrote nothing.
   */
  append(sessionId: string, events: NewEvent[], metaPatch?: Record<string, unknown>, options?: WriteOptions): Promise<number[]>;

  /** A range read by position: cost depends on the page, not on the session's size. */
  read(sessionId: string, options?: ReadOptions): Promise<ReadPage>;

  /** The seq the next event will get. */
  head(sessionId: string): Promise<number>;

  /** Catch-up from `from` (clamped to the head), then live; no gap, no duplicate. */
  subscribe(sessionId: string, from: number, listener: SubscriptionListener, options?: SubscribeOptions): Promise<Subscription>;

  getMeta(sessionId: string): Promise<SessionMeta | undefined>;
  /** Updates metadata without an event (a merge; `undefined` values delete keys). */
  patchMeta(sessionId: string, patch: Record<string, unknown>, options?: WriteOptions): Promise<SessionMeta>;
  /** Sessions newest first. */
  list(options?: ListOptions): Promise<ListPage>;

  /**
   * Removes a session, its events and metadata, for good; false when there was none. Its
   * subscriptions end with `error` (not_found). The caller makes sure nobody writes to it.
   */
  delete(sessionId: string): Promise<boolean>;
  /** How many sessions the log holds: a counter the backend keeps, not a listing. */
  count(): Promise<number>;

  /**
   * Keeps `checkpoint` as the session's checkpoint unless the one kept is newer (a higher
   * seq): resolves true when kept. Atomic: a reader sees the old one or the new one,
   * whole, whatever crashes meanwhile. Not synced on its own: a checkpoint lost with the
   * machine costs a longer read, never an event. LogError('invalid') when its seq is past
   * the head; not fenced (any writer's fold of the same events is the same).
   */
  putCheckpoint(sessionId: string, checkpoint: Checkpoint): Promise<boolean>;

  /** The session's checkpoint, if one was kept. */
  getCheckpoint(sessionId: string): Promise<Checkpoint | undefined>;

  /** Waits for in-flight appends, then releases the store. */
  close(): Promise<void>;
}

export const READ_LIMIT_MAX = 10000;

export type LogErrorKind = 'not_found' | 'exists' | 'closed' | 'storage' | 'invalid' | 'fenced' | 'conflict';

/** Errors of the log; the daemon maps `kind` to a protocol error code. */
export class LogError extends Error {
  readonly kind: LogErrorKind;
  constructor(kind: LogErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogError';
    this.kind = kind;
  }
}
