import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// layout.cjs, not index.js: no zod needed to find the socket.
import { dataLayout, type DataLayout } from '../../protocol/layout.cjs';
import { parseStopMarker, type StopMarker } from '../../protocol/methods/daemon.js';
import { DialError, defaultHome, dialOnce, isNoDaemon } from './socket.cjs';
import { dialRemote, remoteTarget, type RemoteTarget } from './remote.js';

export { DialError, dialOnce };

/**
 * No daemon runs because someone stopped it with `agentd stop`, and this connection is
 * not an explicit command: clients do not start it again on their own. `reason` is the
 * stop's (who stopped it), when known.
 */
export class DaemonStoppedError extends DialError {
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** The error for a daemon stopped as `marker` says. */
export function stoppedError(marker: StopMarker): DaemonStoppedError {
  return new DaemonStoppedError(
    `the agentd daemon was stopped on purpose (${marker.reason}, ${new Date(marker.at).toISOString()}); start it again with \`agentd start\``,
    marker.reason,
  );
}

/** The marker `agentd stop` left in the data dir, if any (see protocol/methods/daemon.ts). */
export function stopMarker(layout: DataLayout): StopMarker | undefined {
  try {
    return parseStopMarker(readFileSync(layout.stopMarker, 'utf8'));
  } catch {
    return undefined;
  }
}

export function clientLayout(home: string = defaultHome()): DataLayout {
  return dataLayout(resolve(home));
}

/** The `agentd` entry, found beside this compiled file; the daemon is started through it. */
const AGENTD_BIN = fileURLToPath(new URL('../../bin/agentd.cjs', import.meta.url));

/**
 * Starts `agentd daemon` detached: it outlives this process (and the editor that started
 * it). `requestedAt` lets the daemon see a stop that came after this request (it then
 * does not start: see StopMarker).
 */
export function startDaemonDetached(layout: DataLayout, requestedAt = Date.now()): void {
  const log = openSync(layout.logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [AGENTD_BIN, 'daemon'], {
      detached: true,
      stdio: ['ignore', 'ignore', log],
      cwd: '/',
      // A remote daemon's token is the client's, never the local daemon's.
      env: { ...process.env, AGENTD_HOME: layout.home, AGENTD_AUTOSTART_AT: String(requestedAt), AGENTD_TOKEN: undefined },
    });
    child.unref();
  } finally {
    closeSync(log);
  }
}

export interface DialOptions {
  layout?: DataLayout;
  /** Start the daemon when none answers (default true). */
  autostart?: boolean;
  /**
   * A command a person just ran (default false). Only such a dial starts a daemon that
   * was stopped with `agentd stop`; any other (reconnects, editor bridges, background
   * work) fails with DaemonStoppedError instead.
   */
  explicit?: boolean;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /**
   * A daemon over the network (clients/lib/remote.ts). Default: AGENTD_REMOTE, unless
   * `layout` pins a local data dir; else the local daemon.
   */
  remote?: RemoteTarget;
}

/**
 * Connects to the daemon, starting it detached when none runs. Race-safe: when two
 * clients start daemons at once, the data dir's lock lets one win and the other
 * exits; both clients then reach the winner.
 */
export async function dial(options: DialOptions = {}): Promise<Duplex> {
  const remote = options.remote ?? (options.layout ? undefined : remoteTarget(undefined));
  if (remote) return dialRemote(remote, options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  const layout = options.layout ?? clientLayout();
  try {
    return await dialOnce(layout.socket);
  } catch (error) {
    if (!isNoDaemon(error) || options.autostart === false) throw explain(error, layout);
  }
  const stopped = stopMarker(layout);
  if (stopped && !options.explicit) throw stoppedError(stopped);
  mkdirSync(layout.home, { recursive: true, mode: 0o700 });
  const requestedAt = Date.now();
  startDaemonDetached(layout, requestedAt);
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let wait = 5;
  for (;;) {
    await new Promise((r) => setTimeout(r, wait));
    try {
      return await dialOnce(layout.socket);
    } catch (error) {
      if (!isNoDaemon(error)) throw explain(error, layout);
      // Stopped on purpose after we asked: the daemon we started does not start either.
      const since = stopMarker(layout);
      if (since && since.at >= requestedAt) throw stoppedError(since);
      if (Date.now() > deadline) {
        throw new DialError(`the agentd daemon did not start within ${options.timeoutMs ?? 10_000} ms; see ${layout.logFile}`);
      }
    }
    wait = Math.min(wait * 2, 200);
  }
}

function explain(error: unknown, layout: DataLayout): Error {
  if (error instanceof DialError) return error;
  const stopped = isNoDaemon(error) ? stopMarker(layout) : undefined;
  if (stopped) return stoppedError(stopped);
  if (isNoDaemon(error)) return new DialError(`no agentd daemon is running for ${layout.home}; start one with \`agentd daemon\``);
  return new DialError(`cannot reach the agentd daemon at ${layout.socket}: ${(error as Error).message}`);
}
