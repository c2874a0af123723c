import {
  DEFAULT_STOP_TIMEOUT_MS,
  PROTOCOL_VERSION,
  type DaemonStatus,
  type DaemonStop,
  type VaultDelete,
  type VaultList,
  type VaultSet,
} from '../../protocol/index.js';
import type { Daemon, Handler } from './context.js';
import { fromLogError } from '../errors.js';

/** How many of a token's scoped sessions exist: a get per id, bounded by the scope. */
async function countVisible(daemon: Daemon, scope: ReadonlySet<string>): Promise<number> {
  const metas = await Promise.all([...scope].map((id) => daemon.log.getMeta(id)));
  return metas.filter((meta) => meta !== undefined).length;
}

export const status: Handler<typeof DaemonStatus> = async (_params, { daemon, peer }) => {
  // Status answers even when the log does not: that is when it is needed most.
  const pool = daemon.sandboxPool();
  // A counter the log keeps: O(1) however many sessions there are. A token scoped to some
  // sessions counts only those it may see (at most its scope's size).
  const scope = peer.access.kind === 'token' ? peer.access.sessions : null;
  const listed = await (scope ? countVisible(daemon, scope) : daemon.log.count()).then(
    (count) => ({ count, error: undefined }),
    (error: unknown) => ({ count: null, error: (fromLogError(error) as Error).message }),
  );
  return {
    daemonId: daemon.id,
    log: daemon.store,
    version: daemon.version,
    protocolVersion: PROTOCOL_VERSION,
    pid: process.pid,
    dataDir: daemon.paths.home,
    socketPath: daemon.paths.socket,
    startedAt: daemon.startedAt,
    uptimeMs: Date.now() - daemon.startedAt,
    rssBytes: process.memoryUsage.rss(),
    counts: { connections: daemon.peers.size, subscriptions: daemon.hub.count, sessions: listed.count },
    ...(listed.error ? { logError: listed.error } : {}),
    modelApiKey: await daemon.modelApiKey(),
    appendLatencyMs: daemon.appendLatency.summary(),
    ...(pool ? { sandboxPool: pool } : {}),
  };
};

export const stop: Handler<typeof DaemonStop> = async (params, { daemon, peer }) => {
  daemon.requestStop(`daemon/stop from connection ${peer.id} (${peer.clientName})`, params?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  return {};
};

export const vaultSet: Handler<typeof VaultSet> = async ({ name, value, binding }, { daemon }) => {
  await daemon.vault.set(name, value, binding);
  daemon.logger.log('info', 'vault entry set', { name, binding: binding?.kind });
  return {};
};

export const vaultList: Handler<typeof VaultList> = async (_params, { daemon }) => ({ entries: await daemon.vault.list() });

export const vaultDelete: Handler<typeof VaultDelete> = async ({ name }, { daemon }) => {
  await daemon.vault.delete(name);
  daemon.logger.log('info', 'vault entry deleted', { name });
  return {};
};
