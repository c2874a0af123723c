/**
 * The session log on PostgreSQL, for daemons that share sessions. Writes are group
 * committed: one apply_batch call (one transaction, one WAL flush) carries every append
 * queued while the previous one was in flight. Seqs are taken in the database under the
 * session's row lock, so any number of daemons may append to one session without a gap
 * or a duplicate. Subscribers hear of other writers' events by LISTEN/NOTIFY and read
 * them from the table; their own are published directly once committed.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { LogError, type NewEvent, type SessionMeta, type StoredEvent } from './session-log.js';
import type * as Log from './session-log.js';
import { checkCheckpoint, checkCheckpointHead, checkWriteOptions, checkEvents, checkListLimit, checkMeta, checkPatch, checkSessionId, readRange, subscribeLimits, WriteGate } from './common.js';
import { GroupCommit, type CommitStats } from './group-commit.js';
import { channelOf, checkSchemaName, parsePgUrl, SCHEMA_VERSION, schemaSql } from './pg-schema.js';
import { applyBatch, encodeEvents, jsonbText, splitPatch, type PgEntry } from './pg-batch.js';
import { PgListener, type AppendNotice } from './pg-notify.js';
import { LiveSubscriptions } from './subscriptions.js';
import { PgTokenStore } from './pg-tokens.js';

const TYPE_SCAN_MAX = 100_000;
const IMPORT_CHUNK = 5000;
const LIST_CHUNK = 1024;
const INT8_OID = 20;
const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 60_000;

export interface PgLogOptions {
  /** Schema holding the tables (default: the URL's `schema` parameter, else `agentd`). */
  schema?: string;
  /** Names this process in notifications (and, as holder, in leases). */
  writerId?: string;
  /** Connections for reads and the one batch in flight (default 8). */
  poolSize?: number;
  /** Problems that are not any caller's error (the notification connection dropping). */
  onWarning?: (message: string, error: Error) => void;
}

interface EventRow {
  seq: number;
  ts: number;
  type: string;
  data: string;
}

/**
 * Cuts an ordered page query at `bytesParam` bytes of event data, in the database: rows
 * while the running total stays within it, and always the first. `cut` marks the last
 * row when rows were left out.
 */
function sizedPage(page: string, bytesParam: string): string {
  return `SELECT seq, ts, type, data, total > ${bytesParam} AS cut FROM (
    SELECT seq, ts, type, data, row_number() OVER w AS n, sum(octet_length(data)) OVER w AS upto, sum(octet_length(data)) OVER () AS total
    FROM (${page}) AS page WINDOW w AS (ORDER BY seq)
  ) AS sized WHERE upto <= ${bytesParam} OR n = 1 ORDER BY seq`;
}

/** A byte bound as a bigint parameter: Infinity is no bound. */
function pgBytes(maxBytes: number): number {
  return Number.isFinite(maxBytes) ? maxBytes : Number.MAX_SAFE_INTEGER;
}

function toEvent(row: EventRow): StoredEvent {
  return { seq: row.seq, ts: row.ts, type: row.type, data: JSON.parse(row.data) as Record<string, unknown> };
}

function storage(cause: unknown, action: 'read' | 'write'): LogError {
  if (cause instanceof LogError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new LogError('storage', `session log ${action} failed (PostgreSQL): ${message}`, { cause });
}

/** Runs `body` in one transaction on a connection of its own: committed if it returns, rolled back if it throws. */
async function inTransaction<T>(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Refuses a layout newer than this code's; an older one would be migrated here. */
async function checkSchemaVersion(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ table: string | null }>('SELECT to_regclass($1)::text AS table', [`"${schema}".settings`]);
  if (!rows[0]?.table) return; // a new database (or one from before versions were kept)
  const found = await client.query<{ value: string }>(`SELECT value FROM "${schema}".settings WHERE key = 'schema_version'`);
  const version = Number(found.rows[0]?.value ?? 0);
  if (version > SCHEMA_VERSION) {
    throw new LogError('storage', `the session log in schema ${schema} has layout version ${version}, newer than this agentd knows (${SCHEMA_VERSION}); upgrade agentd`);
  }
}

export class PgSessionLog implements Log.SessionLog {
  readonly supports: Log.SessionLogSupports = { durable: true, groupCommit: true, sharedWriters: true };
  readonly writerId: string;
  private readonly hub = new LiveSubscriptions((id, from, to, limit, maxBytes) => this.readRange(id, from, to, limit, maxBytes));
  private readonly commits: GroupCommit<PgEntry>;
  /** Per followed session: the seq after the last event published to its subscribers. */
  private readonly published = new Map<string, number>();
  private readonly pumps = new Map<string, Promise<void>>();
  private readonly gate = new WriteGate();
  private listener: PgListener | undefined;
  private closing: Promise<void> | undefined;
  readonly tokens: PgTokenStore;

  private constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    private readonly options: PgLogOptions,
  ) {
    this.writerId = options.writerId ?? `w${randomBytes(6).toString('hex')}`;
    this.commits = new GroupCommit<PgEntry>((batch) => this.writeBatch(batch), () => undefined, false);
    this.tokens = new PgTokenStore({
      query: (sql, params) => this.query(sql, params),
      admit: (op) => this.gate.admit(op),
      checkOpen: () => this.checkOpen(),
      table: this.table('tokens'),
    });
  }

  /** Connects, creates the schema if missing, and starts listening. */
  static async open(url: string, options: PgLogOptions = {}): Promise<PgSessionLog> {
    const { connectionString, schema: fromUrl } = parsePgUrl(url);
    const schema = checkSchemaName(options.schema ?? fromUrl ?? 'agentd');
    const types = { getTypeParser: ((oid: number, format?: string) => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text'))) as never };
    // A database that stops answering (not one that refuses) must fail writes, not hang them.
    const pool = new pg.Pool({ connectionString, max: options.poolSize ?? 8, types, keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS });
    // An idle connection that dies is the pool's problem, not a crash of the daemon.
    pool.on('error', (error) => options.onWarning?.('idle PostgreSQL connection failed', error));
    const log = new PgSessionLog(pool, schema, options);
    try {
      await inTransaction(pool, async (client) => {
        // Daemons starting together must not race each other's CREATE statements.
        await client.query("SELECT pg_advisory_xact_lock(hashtext('agentd schema'))");
        await checkSchemaVersion(client, schema);
        await client.query(schemaSql(schema));
        // The counter starts from what is there (a layout-1 database had none).
        await client.query(`INSERT INTO "${schema}".settings (key, value) SELECT 'session_count', count(*)::text FROM "${schema}".sessions ON CONFLICT (key) DO NOTHING`);
        await client.query(
          `INSERT INTO "${schema}".settings (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
          [String(SCHEMA_VERSION)],
        );
      });
      log.listener = await PgListener.open({
        connection: { connectionString },
        channel: channelOf(schema),
        onNotice: (notice) => log.heard(notice),
        onResync: () => log.resync(),
        onError: (error) => options.onWarning?.('PostgreSQL notification connection lost; reconnecting', error),
      });
    } catch (cause) {
      await pool.end().catch(() => undefined);
      throw new LogError('storage', `cannot open the session log on PostgreSQL: ${(cause as Error).message}`, { cause });
    }
    return log;
  }

  /**
   * A side channel between the processes sharing this log (not durable, not ordered
   * across senders): hears `name` and returns a sender for it. Used by the cluster bus.
   */
  async channel(name: string, onPayload: (payload: string) => void): Promise<(payload: string) => Promise<void>> {
    const channel = `agentd_${name}_${this.schema}`;
    await this.listener!.listen(channel, onPayload);
    return async (payload) => {
      await this.query('SELECT pg_notify($1, $2)', [channel, payload]);
    };
  }

  /** `"schema".table`, for queries. */
  table(name: 'sessions' | 'events' | 'leases' | 'settings' | 'tokens' | 'checkpoints'): string {
    return `"${this.schema}".${name}`;
  }

  create(meta: SessionMeta, events: NewEvent[]): Promise<number[]> {
    return this.gate.admit(() => {
      checkMeta(meta);
      checkEvents(events);
      return this.enqueue({ kind: 'create', sessionId: meta.sessionId, meta: jsonbText(meta, 'meta'), deletes: null, fence: undefined, ifHead: undefined, ...encodeEvents(events) });
    }).then((entry) => events.map((_, i) => entry.first! + i));
  }

  append(sessionId: string, events: NewEvent[], metaPatch?: Record<string, unknown>, options?: Log.WriteOptions): Promise<number[]> {
    return this.gate.admit(() => {
      checkSessionId(sessionId);
      checkWriteOptions(options, true);
      checkEvents(events);
      if (metaPatch !== undefined) checkPatch(metaPatch);
      const patch = metaPatch === undefined ? undefined : splitPatch(metaPatch);
      return this.enqueue({ kind: 'append', sessionId, meta: patch?.set ?? null, deletes: patch?.deletes ?? null, fence: options?.fence, ifHead: options?.ifHead, ...encodeEvents(events) });
    }).then((entry) => events.map((_, i) => entry.first! + i));
  }

  patchMeta(sessionId: string, patch: Record<string, unknown>, options?: Log.WriteOptions): Promise<SessionMeta> {
    return this.gate.admit(() => {
      checkSessionId(sessionId);
      checkWriteOptions(options, true);
      checkPatch(patch);
      const { set, deletes } = splitPatch(patch);
      return this.enqueue({ kind: 'patch', sessionId, meta: set, deletes, fence: options?.fence, ifHead: options?.ifHead, types: [], datas: [] });
    }).then((entry) => entry.merged!);
  }

  async read(sessionId: string, options?: Log.ReadOptions): Promise<Log.ReadPage> {
    this.checkOpen();
    checkSessionId(sessionId);
    // Validated against an unbounded head first; clamped to the real one below.
    const asked = readRange(options, Number.MAX_SAFE_INTEGER);
    const headSeq = await this.head(sessionId);
    const end = Math.min(asked.end, headSeq);
    const from = Math.min(asked.from, end);
    if (!asked.types) {
      const events = await this.readRange(sessionId, from, end, asked.limit, asked.maxBytes);
      const reached = from + events.length;
      return reached < end ? { events, headSeq, next: reached } : { events, headSeq };
    }
    // A filtered read scans at most TYPE_SCAN_MAX positions, then says where to go on.
    const scanEnd = Math.min(end, from + TYPE_SCAN_MAX);
    const rows = await this.query<EventRow & { cut: boolean }>(
      sizedPage(`SELECT seq, ts, type, data FROM ${this.table('events')} WHERE session_id = $1 AND seq >= $2 AND seq < $3 AND type = ANY($4) ORDER BY seq LIMIT $5`, '$6'),
      [sessionId, from, scanEnd, [...asked.types], asked.limit, pgBytes(asked.maxBytes)],
    );
    const events = rows.map(toEvent);
    const cut = events.length === asked.limit || rows.some((r) => r.cut);
    const reached = cut ? events[events.length - 1]!.seq + 1 : scanEnd;
    return reached < end ? { events, headSeq, next: reached } : { events, headSeq };
  }

  async head(sessionId: string): Promise<number> {
    this.checkOpen();
    checkSessionId(sessionId);
    const rows = await this.query<{ head: number }>(`SELECT head FROM ${this.table('sessions')} WHERE session_id = $1`, [sessionId]);
    if (rows.length === 0) throw new LogError('not_found', `session ${sessionId} not found`);
    return rows[0]!.head;
  }

  async subscribe(sessionId: string, from: number, listener: Log.SubscriptionListener, options?: Log.SubscribeOptions): Promise<Log.Subscription> {
    this.checkOpen();
    checkSessionId(sessionId);
    const limits = subscribeLimits(options);
    const head = await this.head(sessionId);
    this.checkOpen();
    // Registered in the tick the head was read in: any event past it is either published
    // to this subscription (ours, or heard by LISTEN) or readable by its catch-up.
    const start = readRange({ from }, head).from;
    if (!this.hub.has(sessionId)) this.published.set(sessionId, head);
    return this.hub.open(sessionId, start, listener, limits);
  }

  async getMeta(sessionId: string): Promise<SessionMeta | undefined> {
    this.checkOpen();
    checkSessionId(sessionId);
    const rows = await this.query<{ meta: SessionMeta }>(`SELECT meta FROM ${this.table('sessions')} WHERE session_id = $1`, [sessionId]);
    return rows[0]?.meta;
  }

  async list(options?: Log.ListOptions): Promise<Log.ListPage> {
    this.checkOpen();
    const limit = checkListLimit(options?.limit);
    const sessions: SessionMeta[] = [];
    const heads: number[] = [];
    const page = (cursor?: string): Log.ListPage => ({ sessions, ...(options?.withHeads ? { heads } : {}), ...(cursor !== undefined ? { cursor } : {}) });
    for (let before = options?.cursor; ; ) {
      const rows = await this.query<{ session_id: string; meta: SessionMeta; head: number }>(
        `SELECT session_id, meta, head FROM ${this.table('sessions')} WHERE $1::text IS NULL OR session_id < $1 ORDER BY session_id DESC LIMIT $2`,
        [before ?? null, LIST_CHUNK],
      );
      for (const row of rows) {
        if (sessions.length >= limit) return page(sessions[sessions.length - 1]!.sessionId);
        if (!options?.filter || options.filter(row.meta)) {
          sessions.push(row.meta);
          heads.push(row.head);
        }
      }
      if (rows.length < LIST_CHUNK) return page();
      before = rows[rows.length - 1]!.session_id;
    }
  }

  /** One transaction: the session, its events and its lease. Other daemons' followers hear nothing more of it. */
  delete(sessionId: string): Promise<boolean> {
    return this.gate.admit(async () => {
      checkSessionId(sessionId);
      const deleted = await inTransaction(this.pool, async (client) => {
        const { rowCount } = await client.query(`DELETE FROM ${this.table('sessions')} WHERE session_id = $1`, [sessionId]);
        await client.query(`DELETE FROM ${this.table('events')} WHERE session_id = $1`, [sessionId]);
        await client.query(`DELETE FROM ${this.table('leases')} WHERE session_id = $1`, [sessionId]);
        await client.query(`DELETE FROM ${this.table('checkpoints')} WHERE session_id = $1`, [sessionId]);
        const deleted = (rowCount ?? 0) > 0;
        if (deleted) await client.query(`UPDATE ${this.table('settings')} SET value = (value::bigint - 1)::text WHERE key = 'session_count'`);
        return deleted;
      }).catch((error: unknown) => Promise.reject(storage(error, 'write')));
      if (deleted) {
        this.published.delete(sessionId);
        this.hub.endSession(sessionId, new LogError('not_found', `session ${sessionId} was deleted`));
      }
      return deleted;
    });
  }

  async count(): Promise<number> {
    this.checkOpen();
    const rows = await this.query<{ value: string }>(`SELECT value FROM ${this.table('settings')} WHERE key = 'session_count'`, []);
    return Number(rows[0]?.value ?? 0);
  }

  /** One statement: kept only while the session's head has reached it and nothing newer is kept. */
  putCheckpoint(sessionId: string, checkpoint: Log.Checkpoint): Promise<boolean> {
    return this.gate.admit(async () => {
      checkSessionId(sessionId);
      checkCheckpoint(checkpoint);
      const rows = await this.query<{ head: number | null; kept: number }>(
        `WITH s AS (SELECT head FROM ${this.table('sessions')} WHERE session_id = $1),
         up AS (
           INSERT INTO ${this.table('checkpoints')} AS c (session_id, seq, state)
           SELECT $1, $2, $3 FROM s WHERE s.head >= $2
           ON CONFLICT (session_id) DO UPDATE SET seq = EXCLUDED.seq, state = EXCLUDED.state WHERE c.seq <= EXCLUDED.seq
           RETURNING 1
         )
         SELECT (SELECT head FROM s) AS head, (SELECT count(*) FROM up)::int AS kept`,
        [sessionId, checkpoint.seq, checkpoint.state],
      );
      const { head, kept } = rows[0]!;
      if (head === null) throw new LogError('not_found', `session ${sessionId} not found`);
      checkCheckpointHead(sessionId, checkpoint, head);
      return kept > 0;
    });
  }

  async getCheckpoint(sessionId: string): Promise<Log.Checkpoint | undefined> {
    this.checkOpen();
    checkSessionId(sessionId);
    const rows = await this.query<{ exists: boolean; seq: number | null; state: string | null }>(
      `SELECT true AS exists, c.seq, c.state FROM ${this.table('sessions')} s LEFT JOIN ${this.table('checkpoints')} c USING (session_id) WHERE s.session_id = $1`,
      [sessionId],
    );
    if (rows.length === 0) throw new LogError('not_found', `session ${sessionId} not found`);
    const { seq, state } = rows[0]!;
    return seq === null || state === null ? undefined : { seq, state };
  }

  /**
   * Copies a whole session in as it was stored elsewhere (seqs and timestamps kept), in
   * one transaction: for moving sessions from another log. False if the id is taken.
   */
  async importSession(meta: SessionMeta, events: readonly StoredEvent[]): Promise<boolean> {
    this.checkOpen();
    checkMeta(meta);
    events.forEach((event, i) => {
      if (event.seq !== i) throw new LogError('invalid', `session ${meta.sessionId}: event ${i} has seq ${event.seq}; seqs must be dense from 0`);
    });
    const metaJson = jsonbText(meta, 'meta');
    return inTransaction(this.pool, async (client) => {
      const created = await client.query(`INSERT INTO ${this.table('sessions')} (session_id, head, meta) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING`, [
        meta.sessionId,
        events.length,
        metaJson,
      ]);
      if (created.rowCount === 0) return false; // taken: nothing was written
      await client.query(`UPDATE ${this.table('settings')} SET value = (value::bigint + 1)::text WHERE key = 'session_count'`);
      for (let at = 0; at < events.length; at += IMPORT_CHUNK) {
        const chunk = events.slice(at, at + IMPORT_CHUNK);
        await client.query(
          `INSERT INTO ${this.table('events')} (session_id, seq, ts, type, data)
           SELECT $1, e.seq, e.ts, e.type, e.data FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) AS e(seq, ts, type, data)`,
          [meta.sessionId, chunk.map((e) => e.seq), chunk.map((e) => e.ts), chunk.map((e) => e.type), chunk.map((e) => JSON.stringify(e.data))],
        );
      }
      return true;
    }).catch((cause: unknown) => Promise.reject(storage(cause, 'write')));
  }

  /** Batches written and the writes they carried, since open. */
  commitStats(): CommitStats {
    return { ...this.commits.stats };
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await this.gate.close();
      await this.commits.drain();
      this.hub.closeAll();
      await this.listener?.close();
      await Promise.allSettled([...this.pumps.values()]);
      await this.pool.end();
    })();
    return this.closing;
  }

  /** A query on the pool, its failures as LogError('storage'). */
  async query<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (cause) {
      throw this.closing ? new LogError('closed', 'session log is closed', { cause }) : storage(cause, 'read');
    }
  }

  private enqueue(fields: Omit<PgEntry, 'onDurable' | 'onFail'>): Promise<PgEntry> {
    return new Promise((resolve, reject) => {
      const entry: PgEntry = {
        ...fields,
        onDurable: () => {
          this.committed(entry);
          resolve(entry);
        },
        onFail: reject,
      };
      this.commits.enqueue(entry);
    });
  }

  /** One transaction for the whole batch; entries the database refused fail alone. */
  private async writeBatch(batch: PgEntry[]): Promise<Array<LogError | undefined>> {
    try {
      return await applyBatch(this.pool, this.schema, this.writerId, batch);
    } catch (cause) {
      // The batch may have committed all the same (the connection died after COMMIT):
      // make sure local followers do not wait for events only we would have published.
      for (const sessionId of new Set(batch.map((e) => e.sessionId))) this.resyncSession(sessionId);
      throw storage(cause, 'write');
    }
  }

  /** Our own committed events go straight to local subscribers, parsed only if someone listens. */
  private committed(entry: PgEntry): void {
    if (entry.types.length === 0 || !this.hub.has(entry.sessionId)) return;
    const first = entry.first!;
    const events = entry.types.map((type, i) => ({ seq: first + i, ts: entry.ts!, type, data: JSON.parse(entry.datas[i]!) as Record<string, unknown> }));
    this.markPublished(entry.sessionId, first + events.length);
    this.hub.publish(entry.sessionId, events);
  }

  private markPublished(sessionId: string, next: number): void {
    this.published.set(sessionId, Math.max(this.published.get(sessionId) ?? 0, next));
  }

  /** Another writer committed events: read them for local subscribers, in order. */
  private heard(notice: AppendNotice): void {
    if (notice.writer === this.writerId) return;
    if (!this.hub.has(notice.sessionId)) {
      this.published.delete(notice.sessionId);
      return;
    }
    this.pump(notice.sessionId, notice.first + notice.count);
  }

  /** After the notification connection came back: catch every followed session up to its head. */
  private resync(): void {
    for (const sessionId of this.hub.sessionIds()) this.resyncSession(sessionId);
  }

  private resyncSession(sessionId: string): void {
    if (!this.hub.has(sessionId)) return;
    this.head(sessionId).then(
      (head) => this.pump(sessionId, head),
      () => undefined,
    );
  }

  /** Publishes [published, upTo) of a session; one reader per session at a time keeps order. */
  private pump(sessionId: string, upTo: number): void {
    const previous = this.pumps.get(sessionId) ?? Promise.resolve();
    const next = previous.then(async () => {
      for (let from = this.published.get(sessionId) ?? upTo; from < upTo && this.hub.has(sessionId) && !this.closing; ) {
        const events = await this.readRange(sessionId, from, upTo, 1000);
        if (events.length === 0) return;
        from = events[events.length - 1]!.seq + 1;
        this.markPublished(sessionId, from);
        this.hub.publish(sessionId, events);
      }
    });
    const settled = next.catch((error: unknown) => this.options.onWarning?.('reading notified events failed', error as Error));
    this.pumps.set(sessionId, settled);
    void settled.finally(() => {
      if (this.pumps.get(sessionId) === settled) this.pumps.delete(sessionId);
    });
  }

  private readRange(sessionId: string, from: number, to: number | undefined, limit: number, maxBytes = Infinity): Promise<StoredEvent[]> {
    return this.query<EventRow>(
      sizedPage(`SELECT seq, ts, type, data FROM ${this.table('events')} WHERE session_id = $1 AND seq >= $2 AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq LIMIT $4`, '$5'),
      [sessionId, from, to ?? null, limit, pgBytes(maxBytes)],
    ).then((rows) => rows.map(toEvent));
  }

  private checkOpen(): void {
    if (this.closing) throw new LogError('closed', 'session log is closed');
  }
}
