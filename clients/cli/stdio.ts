import { dial } from '../lib/dial.js';

/**
 * `agentd stdio`: a byte pipe between stdin/stdout and the daemon's socket, starting
 * the daemon when none runs. It holds no protocol state: the editor speaks to the
 * daemon directly. When the editor goes away, only this pipe ends; the daemon and
 * its sessions run on. Nothing but the daemon's frames is ever written to stdout.
 */
export async function run(): Promise<number> {
  let socket;
  try {
    socket = await dial();
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
