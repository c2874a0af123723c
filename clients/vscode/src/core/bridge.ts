import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { AgentdClient, type PermissionHandler } from '../../../lib/client.js';
import { DaemonStoppedError } from '../../../lib/dial.js';
import { PermissionRequest, PROTOCOL_VERSION } from '../../../../protocol/index.js';

/** How to start the editor bridge: normally `agentd stdio` (with `--remote URL` for a daemon over the network). */
export interface BridgeCommand {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * A secret for the bridge (a remote daemon's token): written to its fd 3, which
   * AGENTD_TOKEN_FILE=/dev/fd/3 names, so that it is in neither its argv nor its env.
   */
  secret?: string;
}

/** The install command, run in a checkout of the agentd repository (the `agentd` name on npm is another package). */
export const INSTALL_COMMAND = 'npm ci && npm install -g .';

export const INSTALL_HINT = `Install agentd from its repository (in your agentd checkout: \`${INSTALL_COMMAND}\`) so that \`agentd\` is on PATH, or set the \`agentd.path\` setting to the agentd executable (e.g. /path/to/agentd/dist/bin/agentd.cjs).`;

/** The `agentd` executable could not be started at all; the message says how to fix it. */
export class AgentdNotFoundError extends Error {
  constructor(readonly command: string, cause: string) {
    super(`agentd was not found (${command}: ${cause}). ${INSTALL_HINT}`);
  }
}

/** The bridge started but gave up before the daemon answered (no daemon, bad data dir, ...). */
export class BridgeFailedError extends Error {}

/**
 * `agentd stdio`'s exit code when it did not start a daemon stopped on purpose
 * (`agentd stop`): only an explicit start (`--start`) brings it back.
 */
const EXIT_STOPPED = 3;

export interface Bridge {
  client: AgentdClient;
  child: ChildProcess;
  /** Settles when the connection is gone: the bridge exited, or the daemon closed it. */
  closed: Promise<void>;
  /** What the bridge wrote to stderr (its diagnostics). */
  stderr(): string;
  dispose(): void;
}

/**
 * Spawns the bridge and returns an initialized client speaking JSON-RPC over its
 * stdin/stdout. The permission handler is registered before `initialize`, so questions
 * the daemon sends right after it are not refused for want of a handler.
 */
export async function openBridge(
  command: BridgeCommand,
  options: { clientName: string; clientVersion?: string; onPermissionRequest?: PermissionHandler; timeoutMs?: number },
): Promise<Bridge> {
  const env = command.env ?? process.env;
  const child = spawn(command.command, command.args, {
    stdio: command.secret === undefined ? ['pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe', 'pipe'],
    env: command.secret === undefined ? env : { ...env, AGENTD_TOKEN: undefined, AGENTD_TOKEN_FILE: '/dev/fd/3' },
    ...(command.cwd ? { cwd: command.cwd } : {}),
  });
  if (command.secret !== undefined) {
    const secretPipe = child.stdio[3] as Writable;
    secretPipe.on('error', () => undefined);
    secretPipe.end(command.secret);
  }
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-8000);
  });
  // Writes to a bridge that just died must not crash the host; the close is handled below.
  child.stdin!.on('error', () => undefined);
  const spawnFailed = new Promise<never>((_, reject) =>
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' || error.code === 'EACCES' ? new AgentdNotFoundError(command.command, error.code) : error),
    ),
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const rpc = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const client = new AgentdClient(rpc);
  const dispose = () => {
    client.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  if (options.onPermissionRequest) client.onRequest(PermissionRequest, options.onPermissionRequest);
  rpc.listen();
  const initialized = client.initialize({
    protocolVersion: PROTOCOL_VERSION,
    clientInfo: { name: options.clientName, ...(options.clientVersion ? { version: options.clientVersion } : {}) },
    capabilities: { permissionRequests: options.onPermissionRequest !== undefined },
  });
  const timeoutMs = options.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      initialized,
      spawnFailed,
      exited.then(() => {
        throw bridgeFailure(command, stderr, child.exitCode);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BridgeFailedError(`agentd did not answer within ${timeoutMs} ms. ${stderr.trim()}`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    // The rpc rejects `initialize` when the stream ends, which may come just before the
    // exit: wait for it (briefly), and report why the bridge ended instead.
    const explained = error instanceof AgentdNotFoundError || error instanceof BridgeFailedError || error instanceof DaemonStoppedError;
    if (!explained) await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    dispose();
    if (!explained && child.exitCode !== null) {
      throw bridgeFailure(command, stderr, child.exitCode);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  spawnFailed.catch(() => undefined);
  return {
    client,
    child,
    closed: Promise.race([client.closed, exited]),
    stderr: () => stderr,
    dispose,
  };
}

function bridgeFailure(command: BridgeCommand, stderr: string, code: number | null): Error {
  const detail = stderr.trim().split('\n').slice(-3).join(' ');
  if (code === EXIT_STOPPED) {
    return new DaemonStoppedError(detail.replace(/^agentd stdio: /, '') || 'the agentd daemon was stopped on purpose');
  }
  return new BridgeFailedError(`\`${[command.command, ...command.args].join(' ')}\` exited (code ${code})${detail ? `: ${detail}` : ''}`);
}
