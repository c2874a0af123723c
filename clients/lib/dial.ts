import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// layout.cjs, not index.js: no zod needed to find the socket.
import { dataLayout, type DataLayout } from '../../protocol/layout.cjs';
import { DialError, defaultHome, dialOnce, isNoDaemon } from './socket.cjs';

export { DialError, dialOnce };

export function clientLayout(home: string = defaultHome()): DataLayout {
  return dataLayout(resolve(home));
}

/** The `agentd` entry, found beside this compiled file; the daemon is started through it. */
const AGENTD_BIN = fileURLToPath(new URL('../../bin/agentd.cjs', import.meta.url));

/** Starts `agentd daemon` detached: it outlives this process (and the editor that started it). */
export function startDaemonDetached(layout: DataLayout): void {
  const log = openSync(layout.logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [AGENTD_BIN, 'daemon'], {
      detached: true,
      stdio: ['ignore', 'ignore', log],
      cwd: '/',
      env: { ...process.env, AGENTD_HOME: layout.home },
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
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
}

/**
 * Connects to the daemon, starting it detached when none runs. Race-safe: when two
 * clients start daemons at once, the data dir's lock lets one win and the other
 * exits; both clients then reach the winner.
 */
export async function dial(options: DialOptions = {}): Promise<Socket> {
  const layout = options.layout ?? clientLayout();
  try {
    return await dialOnce(layout.socket);
  } catch (error) {
    if (!isNoDaemon(error) || options.autostart === false) throw explain(error, layout);
  }
  const { mkdirSync } = await import('node:fs');
  mkdirSync(layout.home, { recursive: true, mode: 0o700 });
  startDaemonDetached(layout);
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let wait = 5;
  for (;;) {
    await new Promise((r) => setTimeout(r, wait));
    try {
      return await dialOnce(layout.socket);
    } catch (error) {
      if (!isNoDaemon(error)) throw explain(error, layout);
      if (Date.now() > deadline) {
        throw new DialError(`the agentd daemon did not start within ${options.timeoutMs ?? 10_000} ms; see ${layout.logFile}`);
      }
    }
    wait = Math.min(wait * 2, 200);
  }
}

function explain(error: unknown, layout: DataLayout): Error {
  if (error instanceof DialError) return error;
  if (isNoDaemon(error)) return new DialError(`no agentd daemon is running for ${layout.home}; start one with \`agentd daemon\``);
  return new DialError(`cannot reach the agentd daemon at ${layout.socket}: ${(error as Error).message}`);
}
