import { z } from 'zod';
import { clientRequest, daemonNotification } from '../define.js';

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
  /**
   * Where this daemon's harness finds its Messages-API key: its own environment (read
   * when it started), the vault entry ANTHROPIC_API_KEY, or nowhere. Never the key.
   */
  modelApiKey: z.enum(['environment', 'vault', 'missing']),
  /** Durable append latency over the daemon's recent appends, in ms. */
  appendLatencyMs: z.object({ p50: z.number(), p99: z.number(), samples: z.number().int() }),
  /** The warm pool of sandboxes started ahead of need (`sandbox.pool` in config.json); absent when none is configured. */
  sandboxPool: z
    .object({
      /** How many it keeps ready. */
      size: z.number().int(),
      /** Started and waiting for a session, and being started. */
      ready: z.number().int(),
      starting: z.number().int(),
      /** Sandboxes provisioned from the pool, and cold (the pool was empty, or the session needed another kind). */
      served: z.number().int(),
      cold: z.number().int(),
      /** Pooled sandboxes that died while waiting, and were replaced. */
      replaced: z.number().int(),
      /** Why the pool is off although configured (not root, perl missing, repeated failures). */
      disabled: z.string().optional(),
    })
    .optional(),
});
export type DaemonStatusResult = z.infer<typeof DaemonStatusResult>;

export const DaemonStatus = clientRequest('daemon/status', {
  scope: 'global',
  description: 'Version, pid, data dir, counts, latency figures.',
  params: z.object({}).optional(),
  result: DaemonStatusResult,
});

/** How long `daemon/stop` lets in-flight model and tool calls run on, by default. */
export const DEFAULT_STOP_TIMEOUT_MS = 30_000;

export const DaemonStop = clientRequest('daemon/stop', {
  scope: 'global',
  description:
    'Stops the daemon on purpose: tells every connection (daemon/stopping), leaves the stop marker that keeps clients from starting it again on their own, ' +
    'takes no new work, lets in-flight model and tool calls finish and be recorded for up to timeoutMs (default 30000), then exits. Answers at once.',
  params: z.object({ timeoutMs: z.number().int().min(0).max(3_600_000).optional() }).optional(),
  result: z.object({}),
});

export const DaemonStoppingNotification = daemonNotification('daemon/stopping', {
  scope: 'global',
  description:
    'The daemon was asked to stop (daemon/stop) and will close this connection. Clients must not start it again on their own: only an explicit command does.',
  params: z.object({
    /** Who asked, for people: e.g. "daemon/stop from connection 7 (agentd-cli)". */
    reason: z.string(),
    /** How long running model and tool calls may still take to reach a durable point. */
    drainMs: z.number().int().nonnegative(),
    /** Turns running on this daemon now; they resume when the daemon next starts. */
    runningTurns: z.number().int().nonnegative(),
  }),
});

/**
 * The stop marker, `$AGENTD_HOME/daemon.stopped` (see layout): written by a daemon
 * stopped with `daemon/stop`, removed by the next daemon that starts. While it exists,
 * clients start no daemon on their own (reconnects, editor bridges); an explicit command
 * does. A daemon started on a client's behalf before the stop (`AGENTD_AUTOSTART_AT`
 * in its environment, in ms) does not start after it.
 */
export const StopMarker = z.object({ at: z.number(), reason: z.string() });
export type StopMarker = z.infer<typeof StopMarker>;

/** The marker file's contents, or undefined when they are not a marker. */
export function parseStopMarker(text: string): StopMarker | undefined {
  try {
    const parsed = StopMarker.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
