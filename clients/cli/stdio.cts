import type { Socket } from 'node:net';
import { dataLayout } from '../../protocol/layout.cjs';
import { HomeOptionError, takeHomeOption } from '../lib/home-option.cjs';
import { defaultHome, dialOnce, isNoDaemon } from '../lib/socket.cjs';
import { pipeEditorToDaemon } from './lsp-lifecycle.cjs';

const USAGE =
  'usage: agentd stdio [--start] [--home DIR]   (an editor bridge: JSON-RPC frames between stdin/stdout and the daemon of\n' +
  '  DIR, else $AGENTD_HOME; it starts the daemon when none runs, but not one stopped with `agentd stop` (exit 3) unless --start)';

/** A running daemon is dialled straight away; only when none answers is the (ESM) autostart loaded. */
async function connect(explicit: boolean): Promise<Socket> {
  try {
    return await dialOnce(dataLayout(defaultHome()).socket);
  } catch (error) {
    if (!isNoDaemon(error)) throw error;
    const { dial } = await import('../lib/dial.js');
    return dial({ explicit });
  }
}

/** Exit code when the daemon was stopped on purpose and this bridge did not start it (as `agentd status`). */
const EXIT_STOPPED = 3;

/**
 * `agentd stdio`: a byte pipe between stdin/stdout and the daemon's socket, starting
 * the daemon when none runs. It holds no protocol state: the editor speaks to the
 * daemon directly. When the editor goes away, only this pipe ends; the daemon and
 * its sessions run on. Nothing but the daemon's frames is ever written to stdout.
 * A daemon stopped with `agentd stop` is not started (exit 3) unless `--start` says
 * the person asked for it. It never restarts the daemon: when the daemon closes the
 * connection, it exits. CommonJS, like the `agentd` entry: editors spawn it on every start.
 */
export async function run(argv: string[] = []): Promise<number> {
  // Help and mistakes go to stderr: stdout carries the daemon's frames only.
  try {
    argv = takeHomeOption(argv);
  } catch (error) {
    if (!(error instanceof HomeOptionError)) throw error;
    process.stderr.write(`agentd stdio: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  const unknown = argv.filter((a) => a !== '--start');
  if (unknown.length > 0) {
    const help = unknown.every((a) => a === '--help' || a === '-h');
    process.stderr.write(`${help ? '' : `agentd stdio: unexpected arguments: ${unknown.join(' ')}\n`}${USAGE}\n`);
    return help ? 0 : 2;
  }
  let socket: Socket;
  try {
    socket = await connect(argv.includes('--start'));
  } catch (error) {
    process.stderr.write(`agentd stdio: ${(error as Error).message}\n`);
    const { DaemonStoppedError } = await import('../lib/dial.js');
    return error instanceof DaemonStoppedError ? EXIT_STOPPED : 1;
  }
  return new Promise<number>((resolve) => {
    let editorGone = false;
    const lifecycle = pipeEditorToDaemon(process.stdin, socket);
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
      const exitCode = lifecycle.exitCode();
      if (!editorGone && exitCode === undefined) process.stderr.write('agentd stdio: the daemon closed the connection\n');
      process.stdin.destroy();
      // LSP: after `exit`, 0 when `shutdown` came first, else 1.
      resolve(exitCode ?? (editorGone ? 0 : 1));
    });
  });
}
