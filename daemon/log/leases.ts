/**
 * Session leases: when several daemons share one session log, each session's harness runs
 * in at most one of them, the holder of its lease. A lease is taken, renewed while held and
 * released when the session goes idle; a daemon that dies stops renewing, and after the
 * lease expires another daemon takes it and wakes the session. Every write a holder makes
 * carries its lease as a Fence, so a holder that lost its lease (paused, partitioned)
 * can no longer write to that session.
 */
import type { Fence } from './session-log.js';

export interface Lease extends Fence {
  readonly sessionId: string;
  /** Aborts when the lease is found lost (a renewal failed, or a write was fenced). */
  readonly lost: AbortSignal;
}

export interface SessionLeases {
  /** This process, as named in the leases it holds. */
  readonly holder: string;
  readonly ttlMs: number;
  /** The lease if we hold it or nobody holds a live one; undefined while another holder has it. */
  acquire(sessionId: string): Promise<Lease | undefined>;
  /**
   * Gives the lease up at once, so another daemon need not wait for it to expire. `handOver`:
   * the session is mid-turn and this daemon is stopping, so any daemon may take it now;
   * otherwise the session went idle, and a prompt queued on it later belongs to the daemon
   * that queued it for a lease's time (see `orphans`).
   */
  release(lease: Lease, options?: { handOver?: boolean }): Promise<void>;
  /** Marks a lease lost (a write carrying it was fenced); its `lost` signal aborts. */
  lose(lease: Lease, reason: string): void;
  /** Who holds a live lease on each of these sessions (absent: nobody). */
  holders(sessionIds: readonly string[]): Promise<Map<string, string>>;
  /**
   * Sessions with a turn under way and no live lease: the work of a daemon that died or
   * handed over. A session whose lease was given up at idle (or never taken) counts only once
   * it has not changed for a lease's time: until then the daemon that queued its prompt is
   * about to take the lease itself.
   */
  orphans(limit: number): Promise<string[]>;
  /** Stops renewing; held leases are left to expire unless released first. */
  close(): Promise<void>;
}
