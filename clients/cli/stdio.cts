import type { Socket } from 'node:net';
import { dataLayout } from '../../protocol/layout.cjs';
import { defaultHome, dialOnce, isNoDaemon } from '../lib/socket.cjs';

const USAGE = 'usage: agentd stdio   (an editor bridge: JSON-RPC frames between stdin/stdout and the daemon of $AGENTD_HOME)';

/** A running daemon is dialled straight away; only when none answers is the (ESM) autostart loaded. */
async function connect(): Promise<Socket> {
  try {
    return await dialOnce(dataLayout(defaultHome()).socket);
  } catch (error) {
    if (!isNoDaemon(error)) throw error;
    const { dial } = await import('../lib/dial.js');
    return dial();
  }
}

/**
 * `agentd stdio`: a byte pipe between stdin/stdout and the daemon's socket, starting
 * the daemon when none runs. It holds no protocol state: the editor speaks to the
 * daemon directly. When the editor goes away, only this pipe ends; the daemon and
 * its sessions run on. Nothing but the daemon's frames is ever written to stdout.
 * CommonJS, like the `agentd` entry: editors spawn it on every start.
 */
export async function run(argv: string[] = []): Promise<number> {
  // Help and mistakes go to stderr: stdout carries the daemon's frames only.
  if (argv.length > 0) {
    const help = argv.every((a) => a === '--help' || a === '-h');
    process.stderr.write(`${help ? '' : `agentd stdio: unexpected arguments: ${argv.join(' ')}\n`}${USAGE}\n`);
    return help ? 0 : 2;
  }
  let socket: Socket;
  try {
    socket = await connect();
  } catch (error) {
    process.stderr.write(`agentd stdio: ${(error as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let editorGone = false;
    process.stdin.pipe(socket);
    socket.pipe(process.stdout);
    process.stdin.on('end', () => {
      editorGone = true;
      socket.end();
    });
    process.stdout.on('error', () => {
      editorGone = true;
      socket.destroy();
    });
    socket.on('error', (error) => process.stderr.write(`agentd stdio: ${error.message}\n`));
    socket.on('close', () => {
      if (!editorGone) process.stderr.write('agentd stdio: the daemon closed the connection\n');
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      resolve(editorGone ? 0 : 1);
    });
  });
}
