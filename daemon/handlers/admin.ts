import {
  DEFAULT_STOP_TIMEOUT_MS,
  PROTOCOL_VERSION,
  type DaemonStatus,
  type DaemonStop,
  type VaultDelete,
  type VaultList,
  type VaultSet,
} from '../../protocol/index.js';
import type { Handler } from './context.js';
import { fromLogError } from '../errors.js';
import { maySee } from '../access.js';

export const status: Handler<typeof DaemonStatus> = async (_params, { daemon, peer }) => {
  // Status answers even when the log does not: that is when it is needed most.
  const pool = daemon.sandboxPool();
  const scoped = peer.access.kind === 'token' && peer.access.sessions !== null;
  const listed = await daemon.log.list({ limit: 1_000_000, ...(scoped ? { filter: (meta) => maySee(peer.access, meta.sessionId) } : {}) }).then(
    (page) => ({ count: page.sessions.length, error: undefined }),
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
