import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { dataLayout } from '../../protocol/layout.cjs';
import { defaultHome, dialOnce, isNoDaemon } from '../lib/socket.cjs';

const USAGE =
  'usage: agentd stdio [--start] [--remote wss://HOST:PORT [--token-file FILE]]\n' +
  '  an editor bridge: JSON-RPC frames between stdin/stdout and the daemon of $AGENTD_HOME; it starts\n' +
  '  the daemon when none runs, but not one stopped with `agentd stop` (exit 3) unless --start.\n' +
  '  --remote (or AGENTD_REMOTE): the daemon listening there instead, with the token in AGENTD_TOKEN\n' +
  '  or the file --token-file (or AGENTD_TOKEN_FILE) names; AGENTD_REMOTE_CA: a PEM file to trust.';

/** A running daemon is dialled straight away; only when none answers (or it is remote) is the ESM client library loaded. */
async function connect(explicit: boolean, remote: string | undefined, tokenFile: string | undefined): Promise<Duplex> {
  if (remote !== undefined || process.env.AGENTD_REMOTE) {
    const { dialRemote, remoteTarget } = await import('../lib/remote.js');
    return dialRemote(remoteTarget(remote, process.env, tokenFile)!);
  }
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

function parse(argv: string[]): { start: boolean; remote?: string; tokenFile?: string } | number {
  let values;
  try {
    const parsed = parseArgs({ args: argv, options: { start: { type: 'boolean' }, remote: { type: 'string' }, 'token-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    if (parsed.positionals.length > 0) throw new Error(`unexpected argument${parsed.positionals.length > 1 ? 's' : ''}: ${parsed.positionals.join(' ')}`);
    values = parsed.values;
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
    process.stderr.write(`agentd stdio: ${code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown ? `unknown option ${unknown}` : message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stderr.write(`${USAGE}\n`);
    return 0;
  }
  return { start: values.start === true, ...(values.remote !== undefined ? { remote: values.remote } : {}), ...(values['token-file'] !== undefined ? { tokenFile: values['token-file'] } : {}) };
}

/**
 * `agentd stdio`: a byte pipe between stdin/stdout and the daemon's socket, starting
 * the daemon when none runs. It holds no protocol state: the editor speaks to the
 * daemon directly. When the editor goes away, only this pipe ends; the daemon and
 * its sessions run on. Nothing but the daemon's frames is ever written to stdout.
 * A daemon stopped with `agentd stop` is not started (exit 3) unless `--start` says
 * the person asked for it. It never restarts the daemon: when the daemon closes the
 * connection, it exits. With `--remote` the pipe's other end is a daemon's WebSocket
 * (each frame one message). CommonJS, like the `agentd` entry: editors spawn it on every start.
 */
export async function run(argv: string[] = []): Promise<number> {
  // Help and mistakes go to stderr: stdout carries the daemon's frames only.
  const options = parse(argv);
  if (typeof options === 'number') return options;
  let socket: Duplex;
  try {
    socket = await connect(options.start, options.remote, options.tokenFile);
  } catch (error) {
    process.stderr.write(`agentd stdio: ${(error as Error).message}\n`);
    const { DaemonStoppedError } = await import('../lib/dial.js');
    return error instanceof DaemonStoppedError ? EXIT_STOPPED : 1;
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
      const reason = (socket as { closeReason?: string }).closeReason;
      if (!editorGone) process.stderr.write(`agentd stdio: ${reason ?? 'the daemon closed the connection'}\n`);
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      resolve(editorGone ? 0 : 1);
    });
  });
}
