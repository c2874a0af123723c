/**
 * A session log whose writes to one session carry that session's current lease. Used for
 * everything a harness writes: when the lease is gone the write fails with 'fenced' and
 * nothing is written, and the lease is marked lost so the harness stops that session.
 */
import { LogError, type SessionLog } from './session-log.js';
import type { Lease, SessionLeases } from './leases.js';
import { delegateLog } from './delegate.js';

export function fencedLog(log: SessionLog, leases: SessionLeases, current: () => Lease | undefined): SessionLog {
  const fence = (): Lease => {
    const lease = current();
    if (!lease || lease.lost.aborted) throw new LogError('fenced', 'this daemon holds no lease on the session; nothing was written');
    return lease;
  };
  const lostOnFence = <T>(lease: Lease, write: Promise<T>): Promise<T> =>
    write.catch((error: unknown) => {
      if (error instanceof LogError && error.kind === 'fenced') leases.lose(lease, 'a write was fenced: another daemon holds the lease');
      throw error;
    });
  return delegateLog(log, {
    append: async (sessionId, events, metaPatch, options) => {
      const lease = fence();
      return lostOnFence(lease, log.append(sessionId, events, metaPatch, { ...options, fence: { holder: lease.holder, epoch: lease.epoch } }));
    },
    patchMeta: async (sessionId, patch, options) => {
      const lease = fence();
      return lostOnFence(lease, log.patchMeta(sessionId, patch, { ...options, fence: { holder: lease.holder, epoch: lease.epoch } }));
    },
  });
}

export function isFenced(error: unknown): boolean {
  return error instanceof LogError && error.kind === 'fenced';
}
