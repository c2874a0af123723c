/**
 * Where the daemon keeps sessions: the embedded LevelDB log in its data dir (the default),
 * or a PostgreSQL database shared with other daemons when AGENTD_LOG is a postgres:// URL.
 */
import { ClassicLevel } from 'classic-level';
import { delegateLog, LevelSessionLog, PgLeases, PgSessionLog, redactPgUrl } from './log/index.js';
import type { SessionLeases, SessionLog } from './log/index.js';
import type { Logger } from './logger.js';
import { ClusterBus } from './cluster/bus.js';

export interface OpenedLog {
  log: SessionLog;
  /** Present when other daemons may share the sessions. */
  leases?: SessionLeases;
  /** Messages to and from those daemons. */
  bus?: ClusterBus;
  backend: 'leveldb' | 'postgres';
  /** For status and logs; never holds a password. */
  location: string;
}

const DEFAULT_LEASE_MS = 10_000;

export class StoreConfigError extends Error {}

function leaseMs(): number {
  const raw = process.env.AGENTD_LEASE_MS;
  if (raw === undefined || raw === '') return DEFAULT_LEASE_MS;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 200) throw new StoreConfigError(`AGENTD_LEASE_MS must be an integer of at least 200 (ms), not ${JSON.stringify(raw)}`);
  return value;
}

export async function openStore(dir: string, daemonId: string, logger: Logger): Promise<OpenedLog> {
  const url = process.env.AGENTD_LOG;
  if (!url) return { log: await LevelSessionLog.open(dir), backend: 'leveldb', location: dir };
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new StoreConfigError('AGENTD_LOG must be a postgres:// URL; leave it unset for the embedded LevelDB log in the data dir');
  }
  const ttl = leaseMs();
  // One daemon per data dir still: LevelDB's LOCK file, on a store that holds nothing else.
  const lock = new ClassicLevel(dir);
  await lock.open();
  try {
    const log = await PgSessionLog.open(url, {
      writerId: daemonId,
      onWarning: (message, error) => logger.log('warn', message, { error: error.message }),
    });
    const leases = new PgLeases(log, ttl);
    let bus: ClusterBus | undefined;
    const send = await log.channel('bus', (payload) => bus?.receive(payload));
    bus = new ClusterBus(daemonId, send, logger);
    const closeBoth = async (): Promise<void> => {
      await bus?.flush();
      await log.close();
      await lock.close();
    };
    return { log: delegateLog(log, { close: closeBoth }), leases, bus, backend: 'postgres', location: redactPgUrl(url) };
  } catch (error) {
    await lock.close();
    throw error;
  }
}
