import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// layout.js, not index.js: the stdio bridge must start fast and needs no zod.
import { dataLayout, type DataLayout } from '../../protocol/layout.js';

export function clientLayout(home: string = process.env.AGENTD_HOME || join(homedir(), '.agentd')): DataLayout {
  return dataLayout(resolve(home));
}

/** A failure to reach the daemon, with what to do about it. */
export class DialError extends Error {}

/**
 * Refuses a socket that another user could have put there or could also use: the
 * daemon's socket belongs to us and is mode 0600.
 */
function checkSocket(path: string): void {
  const info = statSync(path);
  if (!info.isSocket()) throw new DialError(`${path} is not a socket`);
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) throw new DialError(`${path} belongs to uid ${info.uid}, not to you (uid ${uid}); refusing it`);
  if ((info.mode & 0o077) !== 0) throw new DialError(`${path} is accessible to other users (mode ${(info.mode & 0o777).toString(8)}); refusing it`);
}

/** One connection attempt. */
export function dialOnce(path: string): Promise<Socket> {
  return new Promise((resolvePromise, reject) => {
    try {
      checkSocket(path);
    } catch (error) {
      reject(error);
      return;
    }
    const socket = netConnect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolvePromise(socket);
    });
    socket.once('error', reject);
  });
}

function isNoDaemon(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

/** The `agentd` entry, found beside this compiled file; the daemon is started through it. */
const AGENTD_BIN = fileURLToPath(new URL('../../bin/agentd.js', import.meta.url));

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
