/**
 * One group commit on PostgreSQL: the queued writes as parallel arrays, applied by the
 * schema's apply_batch function in one transaction (see pg-schema.ts), and the outcome of
 * each: a first seq (and merged meta for a patch), or the reason the database refused it.
 */
import type pg from 'pg';
import { LogError } from './session-log.js';
import type { Fence, NewEvent, SessionMeta } from './session-log.js';
import { encode } from './common.js';
import type { CommitEntry } from './group-commit.js';
import { channelOf } from './pg-schema.js';

export interface PgEntry extends CommitEntry {
  kind: 'create' | 'append' | 'patch';
  types: string[];
  datas: string[];
  /** create: the whole meta; append/patch: the keys a patch sets (JSON text). */
  meta: string | null;
  /** The keys a patch deletes (JSON array text). */
  deletes: string | null;
  fence: Fence | undefined;
  ifHead: number | undefined;
  /** Filled in by the batch: the first seq, and for patches the merged meta. */
  first?: number;
  merged?: SessionMeta;
  ts?: number;
}

interface BatchRow {
  o_ord: number;
  o_status: 'ok' | 'fenced' | 'exists' | 'not_found' | 'conflict';
  o_first: number | null;
  o_meta: SessionMeta | null;
}

/** jsonb refuses \u0000 and lone surrogates; JSON.stringify writes exactly those as escapes. */
const JSONB_UNSAFE = /\\u0000|\\ud[89a-f][0-9a-f]{2}/i;

export function jsonbText(value: unknown, what: string): string {
  const json = encode(value, what);
  if (JSONB_UNSAFE.test(json)) throw new LogError('invalid', `${what} holds \\u0000 or a lone surrogate, which PostgreSQL cannot store`);
  return json;
}

export function splitPatch(patch: Record<string, unknown>): { set: string; deletes: string } {
  const set: Record<string, unknown> = {};
  const deletes: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) deletes.push(key);
    else set[key] = value;
  }
  return { set: jsonbText(set, 'meta patch'), deletes: JSON.stringify(deletes) };
}

export function encodeEvents(events: NewEvent[]): { types: string[]; datas: string[] } {
  return { types: events.map((e) => e.type), datas: events.map((e) => encode(e.data, `event ${e.type}`)) };
}

/** Applies the batch; throws only when nothing is known to have committed (the call failed). */
export async function applyBatch(pool: pg.Pool, schema: string, writerId: string, batch: PgEntry[]): Promise<Array<LogError | undefined>> {
  const ts = Date.now();
  const column = <T>(pick: (e: PgEntry) => T): T[] => batch.map(pick);
  const { rows } = await pool.query<BatchRow>(`SELECT o_ord, o_status, o_first, o_meta FROM "${schema}".apply_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, [
    column((e) => e.kind),
    column((e) => e.sessionId),
    column((e) => e.types.length),
    column((e) => e.meta),
    column((e) => e.deletes),
    column((e) => e.fence?.holder ?? null),
    column((e) => e.fence?.epoch ?? null),
    column((e) => e.ifHead ?? null),
    batch.flatMap((e) => e.types),
    batch.flatMap((e) => e.datas),
    ts,
    ts,
    writerId,
    channelOf(schema),
  ]);
  return batch.map((entry, i) => {
    const row = rows[i];
    switch (row?.o_status) {
      case 'ok':
        entry.first = row.o_first!;
        entry.ts = ts;
        if (row.o_meta) entry.merged = row.o_meta;
        return undefined;
      case 'fenced':
        return new LogError('fenced', `session ${entry.sessionId}: the lease this write carried is no longer held; nothing was written`);
      case 'exists':
        return new LogError('exists', `session ${entry.sessionId} already exists`);
      case 'not_found':
        return new LogError('not_found', `session ${entry.sessionId} not found`);
      case 'conflict':
        return new LogError('conflict', `session ${entry.sessionId} moved on (expected head ${entry.ifHead}); nothing was written`);
      default:
        return new LogError('storage', `session log write failed (PostgreSQL): no result for write ${i}`);
    }
  });
}
