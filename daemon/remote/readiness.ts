import { fromLogError } from '../errors.js';
import type { Daemon } from '../handlers/index.js';
import type { Readiness } from './http.js';

/**
 * /readyz: the log answers and, with a shared log, the lease loop runs. Anyone who can
 * reach the listener may ask, so the answer names states only; the why goes to daemon.log.
 */
export async function readiness(daemon: Daemon, state: { stopping: boolean }): Promise<Readiness> {
  const log = await daemon.log.list({ limit: 1 }).then(
    () => 'ok',
    (error: unknown) => {
      daemon.logger.log('warn', 'readyz: the session log does not answer', { error: (fromLogError(error) as Error).message });
      return 'unreachable';
    },
  );
  const leases = daemon.harness.leaseLoop();
  const ready = !state.stopping && log === 'ok' && (leases === 'none' || leases === 'running');
  return { ready, checks: { log, leases, ...(state.stopping ? { daemon: 'stopping' } : {}) } };
}

