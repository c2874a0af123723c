/**
 * Reaching the daemon's socket, in CommonJS: `agentd stdio` (spawned by editors on
 * every start) dials through this without loading the ESM loader or the rest of the
 * client library; the ESM dial() uses the same checks.
 */
import { statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** A failure to reach the daemon, with what to do about it. */
export class DialError extends Error {}

/** $AGENTD_HOME, or ~/.agentd. */
export function defaultHome(): string {
  return resolve(process.env.AGENTD_HOME || join(homedir(), '.agentd'));
}

/**
 * Refuses a socket that another user could have put there or could also use: the
 * daemon's socket belongs to us and is mode 0600.
 */
export function checkSocket(path: string): void {
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
    const socket = connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolvePromise(socket);
    });
    socket.once('error', reject);
  });
}

/** No daemon answers there (nothing listens, or no socket at all). */
export function isNoDaemon(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}
