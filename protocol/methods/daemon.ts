import { z } from 'zod';
import { defineRequest } from '../define.js';

export const DaemonStatusResult = z.object({
  /** This daemon process, as named in session leases and harness.woke events. */
  daemonId: z.string(),
  /** Where sessions are kept: the embedded LevelDB log, or a PostgreSQL database shared with other daemons. */
  log: z.object({ backend: z.enum(['leveldb', 'postgres']), location: z.string() }),
  version: z.string(),
  protocolVersion: z.string(),
  pid: z.number().int(),
  dataDir: z.string(),
  socketPath: z.string(),
  startedAt: z.number(),
  uptimeMs: z.number(),
  rssBytes: z.number().int(),
  counts: z.object({
    connections: z.number().int(),
    subscriptions: z.number().int(),
    /** null when the session log cannot be read right now (see logError). */
    sessions: z.number().int().nullable(),
  }),
  /** Why the session log cannot be read, while it cannot (a database that is down). */
  logError: z.string().optional(),
  /** Durable append latency over the daemon's recent appends, in ms. */
  appendLatencyMs: z.object({ p50: z.number(), p99: z.number(), samples: z.number().int() }),
});
export type DaemonStatusResult = z.infer<typeof DaemonStatusResult>;

export const DaemonStatus = defineRequest({
  method: 'daemon/status',
  direction: 'clientToDaemon',
  scope: 'global',
  description: 'Version, pid, data dir, counts, latency figures.',
  params: z.object({}).optional(),
  result: DaemonStatusResult,
});

export const DaemonStop = defineRequest({
  method: 'daemon/stop',
  direction: 'clientToDaemon',
  scope: 'global',
  description: 'Drains in-flight appends and stops the daemon; answers before it goes.',
  params: z.object({}).optional(),
  result: z.object({}),
});
