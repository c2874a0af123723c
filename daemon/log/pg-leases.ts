/**
 * Leases in the session log's own database (the leases table of pg-schema.ts). Expiry is
 * judged by the database's clock only, so daemons on machines with skewed clocks agree.
 * All held leases are renewed by one statement every ttl/3.
 */
import type { Lease, SessionLeases } from './leases.js';
import type { PgSessionLog } from './pg-log.js';

/** A lease by session and epoch: a renewal of an older epoch is not this lease's. */
function leaseKey(lease: Lease): string {
  return `${lease.sessionId} ${lease.epoch}`;
}

interface HeldLease extends Lease {
  readonly abort: AbortController;
}

export class PgLeases implements SessionLeases {
  private readonly held = new Map<string, HeldLease>();
  private readonly timer: NodeJS.Timeout;
  private renewing: Promise<void> | undefined;

  constructor(
    private readonly log: PgSessionLog,
    readonly ttlMs: number,
    private readonly onLost: (lease: Lease, reason: string) => void = () => undefined,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  get holder(): string {
    return this.log.writerId;
  }

  async acquire(sessionId: string): Promise<Lease | undefined> {
    const mine = this.held.get(sessionId);
    if (mine) {
      // Held by us as far as we know: renewed if so, else lost and taken afresh below.
      const renewed = await this.extend([mine]);
      if (renewed.has(leaseKey(mine)) && this.held.get(sessionId) === mine) return mine;
      this.lose(mine, 'lease expired before it was renewed');
    }
    const rows = await this.log.query<{ epoch: number }>(
      `INSERT INTO ${this.log.table('leases')} AS l (session_id, holder, epoch, expires_at)
         VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
       ON CONFLICT (session_id) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
         WHERE l.expires_at <= clock_timestamp()
       RETURNING epoch`,
      [sessionId, this.holder, this.ttlMs],
    );
    if (rows.length === 0) return undefined;
    const abort = new AbortController();
    const lease: HeldLease = { sessionId, holder: this.holder, epoch: rows[0]!.epoch, lost: abort.signal, abort };
    this.held.set(sessionId, lease);
    return lease;
  }

  async release(lease: Lease, options: { handOver?: boolean } = {}): Promise<void> {
    if (this.held.get(lease.sessionId) === lease) this.held.delete(lease.sessionId);
    // Free at once, and the epoch stays, so the next holder's is higher. '-infinity' marks a
    // lease given up at idle; a hand-over expires it just now, which orphans() takes at once.
    const expires = options.handOver ? `clock_timestamp() - interval '1 millisecond'` : `'-infinity'`;
    await this.log.query(`UPDATE ${this.log.table('leases')} SET expires_at = ${expires} WHERE session_id = $1 AND holder = $2 AND epoch = $3`, [
      lease.sessionId,
      lease.holder,
      lease.epoch,
    ]);
  }

  lose(lease: Lease, reason: string): void {
    const held = this.held.get(lease.sessionId);
    if (held !== lease) return;
    this.held.delete(lease.sessionId);
    held.abort.abort(reason);
    this.onLost(lease, reason);
  }

  async holders(sessionIds: readonly string[]): Promise<Map<string, string>> {
    if (sessionIds.length === 0) return new Map();
    const rows = await this.log.query<{ session_id: string; holder: string }>(
      `SELECT session_id, holder FROM ${this.log.table('leases')} WHERE session_id = ANY($1) AND expires_at > clock_timestamp()`,
      [sessionIds],
    );
    return new Map(rows.map((r) => [r.session_id, r.holder]));
  }

  async orphans(limit: number): Promise<string[]> {
    const rows = await this.log.query<{ session_id: string }>(
      `SELECT s.session_id FROM ${this.log.table('sessions')} s LEFT JOIN ${this.log.table('leases')} l ON l.session_id = s.session_id
       WHERE s.meta->>'status' IN ('queued', 'running', 'waiting')
         AND (l.expires_at > '-infinity' AND l.expires_at <= clock_timestamp()
           OR (l.session_id IS NULL OR l.expires_at = '-infinity')
             AND COALESCE((s.meta->>'updatedAt')::numeric, 0) <= extract(epoch from clock_timestamp()) * 1000 - $2)
       ORDER BY s.session_id LIMIT $1`,
      [limit, this.ttlMs],
    );
    return rows.map((r) => r.session_id);
  }

  /** One statement for every held lease; those it did not renew are lost. */
  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      const leases = [...this.held.values()];
      if (leases.length === 0) return;
      let renewed: Set<string>;
      try {
        renewed = await this.extend(leases);
      } catch {
        return; // the database is unreachable: try again next tick; expiry decides
      }
      for (const lease of leases) {
        if (!renewed.has(leaseKey(lease))) this.lose(lease, 'lease expired before it was renewed');
      }
    })().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  /** Pushes back the expiry of those of `leases` still live; returns which (by leaseKey). */
  private async extend(leases: readonly Lease[]): Promise<Set<string>> {
    const rows = await this.log.query<{ session_id: string; epoch: number }>(
      `UPDATE ${this.log.table('leases')} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
       WHERE holder = $1 AND session_id = ANY($2) AND expires_at > clock_timestamp() RETURNING session_id, epoch`,
      [this.holder, leases.map((l) => l.sessionId), this.ttlMs],
    );
    return new Set(rows.map((r) => `${r.session_id} ${r.epoch}`));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
  }
}
