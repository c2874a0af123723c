import type { Event } from '../../protocol/index.js';
import type { AgentdClient } from './client.js';
import { DaemonStoppedError } from './dial.js';

export interface FollowOptions {
  sessionId: string;
  /** First seq wanted. */
  from: number;
  /**
   * Makes a fresh, initialized client. `first` is the follow's first connection (the
   * command a person just ran: it may start the daemon); the others are reconnects,
   * which must not start a daemon stopped on purpose (DialOptions.explicit false).
   */
  connect: (first: boolean) => Promise<AgentdClient>;
  /** Receives each event once, in seq order, across reconnects. */
  onEvent: (event: Event) => void;
  /** Told when the connection was lost and is being re-established. */
  onReconnecting?: (error: unknown) => void;
  /**
   * Told once per stop when the daemon was stopped on purpose (`agentd stop`): the
   * follow then waits, without starting it, until something starts it again.
   */
  onStopped?: (reason: string) => void;
  /** Told when, after onStopped, the daemon runs again and the follow goes on. */
  onResumed?: () => void;
  /** Stops following. */
  signal?: AbortSignal;
  /** Give up after this many failed connection attempts in a row (default: never). */
  maxAttempts?: number;
}

/** How often a follow looks whether a daemon stopped on purpose runs again. */
const STOPPED_POLL_MS = 500;

/**
 * Follows a session for as long as asked: when the daemon restarts or the connection
 * drops, it reconnects and resubscribes from the last seq it delivered, so the
 * caller sees no gap and no duplicate. When the daemon was stopped on purpose it
 * waits for it to be started again instead. Resolves when `signal` aborts.
 */
export async function followSession(options: FollowOptions): Promise<void> {
  let next = options.from;
  let failures = 0;
  let first = true;
  let stopSaid = false;
  const aborted = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  const stopped = (reason: string) => {
    if (!stopSaid) options.onStopped?.(reason);
    stopSaid = true;
    return Promise.race([aborted, sleep(STOPPED_POLL_MS)]);
  };
  while (!options.signal?.aborted) {
    let client: AgentdClient;
    try {
      client = await options.connect(first);
      first = false;
      failures = 0;
      if (stopSaid) options.onResumed?.();
      stopSaid = false;
    } catch (error) {
      if (error instanceof DaemonStoppedError) {
        await stopped(error.marker.reason);
        continue;
      }
      failures += 1;
      if (options.maxAttempts !== undefined && failures >= options.maxAttempts) throw error;
      options.onReconnecting?.(error);
      await Promise.race([aborted, sleep(Math.min(100 * 2 ** failures, 2000))]);
      continue;
    }
    try {
      await followOn(client, options.sessionId, () => next, (event) => {
        next = event.seq + 1;
        failures = 0;
        options.onEvent(event);
      }, aborted);
    } catch (error) {
      client.close();
      if (client.stoppingNotice) {
        await stopped(client.stoppingNotice.reason);
        continue;
      }
      // The daemon is up but cannot serve the session now (its database is down, say):
      // back off as for a failed connection rather than spin.
      failures += 1;
      options.onReconnecting?.(error);
      await Promise.race([aborted, sleep(Math.min(50 * 2 ** failures, 2000))]);
      continue;
    }
    client.close();
  }
}

/** One connection's worth of following; returns when it closes or `stop` settles. */
async function followOn(
  client: AgentdClient,
  sessionId: string,
  next: () => number,
  deliver: (event: Event) => void,
  stop: Promise<void>,
): Promise<void> {
  let resubscribe!: () => void;
  for (;;) {
    const dropped = new Promise<void>((resolve) => (resubscribe = resolve));
    const sub = await client.subscribe(sessionId, next(), {
      onEvents: (events) => {
        for (const event of events) if (event.seq >= next()) deliver(event);
      },
      onDropped: () => resubscribe(),
    });
    const outcome = await Promise.race([
      dropped.then(() => 'dropped' as const),
      client.closed.then(() => 'closed' as const),
      stop.then(() => 'stopped' as const),
    ]);
    if (outcome === 'closed') throw new Error('connection to the daemon closed');
    if (outcome === 'stopped') {
      await sub.unsubscribe().catch(() => undefined);
      return;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
