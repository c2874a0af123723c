/**
 * The PostgreSQL layout of the session log, in one schema (default `agentd`):
 *   sessions(session_id, head, meta)        head = the seq the next event gets; meta is jsonb
 *   events(session_id, seq, ts, type, data) primary key (session_id, seq): reads are index range scans
 *   leases(session_id, holder, epoch, expires_at)  which daemon runs a session's harness
 *   tokens(id, record)                      access tokens (their hashes) for the network listener
 *   checkpoints(session_id, seq, state)     a session's checkpoint (SessionLog.putCheckpoint)
 *   settings('session_count')               how many sessions there are, kept by apply_batch
 * Every write goes through apply_batch, one call per group commit: it locks the sessions it
 * touches in id order (so concurrent writers never deadlock), takes each head under that
 * lock (so seqs stay dense and unique whoever writes), checks the writer's lease where one
 * is given (fencing), checks the head a conditional write expects, and notifies listeners, all in one transaction: one fsync per batch.
 */

/** The connection URL without our own `schema` parameter, and that schema. */
export function parsePgUrl(url: string): { connectionString: string; schema: string | undefined } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.toString(), schema };
}

/** The URL with any password replaced, for logs and messages. */
export function redactPgUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** A schema name we can put in SQL unquoted-safe (we quote it anyway). */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}: lower-case letters, digits and _ only`);
  return schema;
}

/** The LISTEN/NOTIFY channel of a schema's log: schemas in one database do not hear each other. */
export function channelOf(schema: string): string {
  return `agentd_events_${schema}`;
}

/**
 * The layout this code reads and writes. Stored in the schema's settings table: a daemon
 * refuses a database whose layout is newer than it knows, and a newer daemon is where a
 * migration from an older layout would go.
 */
export const SCHEMA_VERSION = 2;

export function schemaSql(schema: string): string {
  const s = `"${checkSchemaName(schema)}"`;
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.settings (
  key text PRIMARY KEY,
  value text NOT NULL
);
CREATE TABLE IF NOT EXISTS ${s}.sessions (
  session_id text PRIMARY KEY,
  head bigint NOT NULL,
  meta jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS ${s}.events (
  session_id text NOT NULL,
  seq bigint NOT NULL,
  ts bigint NOT NULL,
  type text NOT NULL,
  -- The event's data as the writer's JSON text: jsonb would reorder keys.
  data text NOT NULL,
  PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS ${s}.checkpoints (
  session_id text PRIMARY KEY,
  seq bigint NOT NULL,
  state text NOT NULL
);
CREATE TABLE IF NOT EXISTS ${s}.leases (
  session_id text PRIMARY KEY,
  holder text NOT NULL,
  -- Grows by one at every change of holder, and never goes back: the fencing token.
  epoch bigint NOT NULL,
  expires_at timestamptz NOT NULL
);
-- Access tokens: the record holds a token's hash, never the token (daemon/tokens.ts).
CREATE TABLE IF NOT EXISTS ${s}.tokens (
  id text PRIMARY KEY,
  record jsonb NOT NULL
);
-- Sessions with a turn to finish, for the lease scanner (see daemon/cluster).
CREATE INDEX IF NOT EXISTS sessions_unfinished ON ${s}.sessions ((meta->>'status'))
  WHERE meta->>'status' IN ('queued', 'running', 'waiting');

-- The documented merge of common.ts#mergeMeta, in SQL so that writers on other daemons
-- never overwrite each other's keys: set keys, drop deleted ones, keep sessionId and
-- createdAt, and move updatedAt forward unless the patch sets it.
CREATE OR REPLACE FUNCTION ${s}.merge_meta(cur jsonb, patch jsonb, dels jsonb, now_ms bigint, sid text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $fn$
  SELECT jsonb_set(jsonb_set(jsonb_set(m, '{sessionId}', to_jsonb(sid)),
    '{createdAt}', COALESCE(CASE WHEN jsonb_typeof(m->'createdAt') = 'number' THEN m->'createdAt' END, cur->'createdAt', 'null')),
    '{updatedAt}', CASE WHEN jsonb_typeof(patch->'updatedAt') = 'number' THEN patch->'updatedAt'
                        ELSE to_jsonb(GREATEST(now_ms::numeric, COALESCE((cur->>'updatedAt')::numeric, 0))) END)
  FROM (SELECT (cur || patch) - ARRAY(SELECT jsonb_array_elements_text(COALESCE(dels, '[]'))) AS m) x
$fn$;

CREATE OR REPLACE FUNCTION ${s}.apply_batch(
  p_kind text[], p_session text[], p_count int[], p_meta text[], p_delete text[],
  p_holder text[], p_epoch bigint[], p_if_head bigint[], p_types text[], p_datas text[],
  p_ts bigint, p_now bigint, p_writer text, p_channel text)
RETURNS TABLE (o_ord int, o_status text, o_first bigint, o_meta jsonb)
LANGUAGE plpgsql AS $fn$
DECLARE
  i int;
  off int := 0;
  n int;
  sid text;
  h bigint;
  cur jsonb;
  merged jsonb;
  created int := 0;
BEGIN
  -- One lock order for every writer: concurrent batches cannot deadlock.
  PERFORM 1 FROM ${s}.sessions t WHERE t.session_id = ANY(p_session) ORDER BY t.session_id FOR UPDATE;
  FOR i IN 1 .. COALESCE(array_length(p_kind, 1), 0) LOOP
    sid := p_session[i];
    n := p_count[i];
    o_ord := i; o_first := NULL; o_meta := NULL;
    IF p_holder[i] IS NOT NULL THEN
      -- FOR SHARE: a take-over of this lease waits for our commit, or we see its result.
      PERFORM 1 FROM ${s}.leases l
        WHERE l.session_id = sid AND l.holder = p_holder[i] AND l.epoch = p_epoch[i] AND l.expires_at > clock_timestamp()
        FOR SHARE;
      IF NOT FOUND THEN
        o_status := 'fenced'; off := off + n; RETURN NEXT; CONTINUE;
      END IF;
    END IF;
    IF p_kind[i] = 'create' THEN
      INSERT INTO ${s}.sessions (session_id, head, meta) VALUES (sid, n, p_meta[i]::jsonb) ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        o_status := 'exists'; off := off + n; RETURN NEXT; CONTINUE;
      END IF;
      created := created + 1;
      h := 0;
    ELSE
      SELECT t.meta, t.head INTO cur, h FROM ${s}.sessions t WHERE t.session_id = sid;
      IF NOT FOUND THEN
        o_status := 'not_found'; off := off + n; RETURN NEXT; CONTINUE;
      END IF;
      IF p_if_head[i] IS NOT NULL AND h <> p_if_head[i] THEN
        o_status := 'conflict'; off := off + n; RETURN NEXT; CONTINUE;
      END IF;
      merged := cur;
      IF p_meta[i] IS NOT NULL THEN
        merged := ${s}.merge_meta(cur, p_meta[i]::jsonb, p_delete[i]::jsonb, p_now, sid);
      END IF;
      IF n > 0 OR p_meta[i] IS NOT NULL THEN
        UPDATE ${s}.sessions t SET head = t.head + n, meta = merged WHERE t.session_id = sid;
      END IF;
      IF p_kind[i] = 'patch' THEN o_meta := merged; END IF;
    END IF;
    IF n > 0 THEN
      INSERT INTO ${s}.events (session_id, seq, ts, type, data)
        SELECT sid, h + k - 1, p_ts, p_types[off + k], p_datas[off + k] FROM generate_series(1, n) AS k;
      -- Sent at commit: listeners learn of durable events only.
      PERFORM pg_notify(p_channel, sid || ' ' || h || ' ' || n || ' ' || p_writer);
    END IF;
    off := off + n;
    o_status := 'ok'; o_first := h;
    RETURN NEXT;
  END LOOP;
  -- The session counter, once per batch: daemon/status counts without listing.
  IF created > 0 THEN
    UPDATE ${s}.settings SET value = (value::bigint + created)::text WHERE key = 'session_count';
  END IF;
END
$fn$;
`;
}
