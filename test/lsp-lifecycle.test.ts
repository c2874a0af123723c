/**
 * `agentd stdio` keeps the LSP lifecycle, driven by vscode-jsonrpc's own client API in a
 * separately installed version (8.2, the one VS Code's language client uses; the daemon
 * has 10): a MessageConnection over the bridge's stdio, as an editor makes one: `shutdown`
 * with params `null` or none, InvalidRequest after it, and `exit` ending the bridge
 * with 0 after `shutdown` and 1 without.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  createMessageConnection,
  NotificationType0,
  RequestType0,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type Message,
  type MessageConnection,
} from 'vscode-jsonrpc-8/node.js';
import { ErrorCode, PROTOCOL_VERSION } from '../protocol/index.js';
import { AGENTD_BIN, runAgentd, startDaemon, type TestDaemon } from './support/daemon.js';
import { suiteFixture } from './support/fixture.js';

const Shutdown = new RequestType0<null, void>('shutdown');
const Exit = new NotificationType0('exit');
const init = { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'lsp-lifecycle' } };

interface Bridge {
  child: ChildProcessWithoutNullStreams;
  exited: Promise<number | null>;
  stderr(): string;
}

function bridge(daemon: TestDaemon): Bridge {
  // The data dir by option, in an environment without AGENTD_HOME, as editors start it.
  const env = { ...process.env };
  delete env.AGENTD_HOME;
  const child = spawn(process.execPath, [AGENTD_BIN, 'stdio', '--home', daemon.layout.home], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

function connectionTo(b: Bridge): MessageConnection {
  const rpc = createMessageConnection(new StreamMessageReader(b.child.stdout), new StreamMessageWriter(b.child.stdin));
  rpc.listen();
  return rpc;
}

async function errorCode(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ResponseError, String(error));
    return error.code;
  }
  assert.fail('the request succeeded');
}

describe('agentd stdio: the LSP lifecycle', () => {
  const daemon = suiteFixture(() => startDaemon());

  it('shutdown without params, InvalidRequest after it, exit ends the bridge with 0', async () => {
    const b = bridge(daemon());
    const rpc = connectionTo(b);
    await rpc.sendRequest('initialize', init);
    assert.equal(await rpc.sendRequest(Shutdown), null);
    assert.equal(await errorCode(rpc.sendRequest('session/list', {})), ErrorCode.InvalidRequest);
    assert.equal(await errorCode(rpc.sendRequest('initialize', init)), ErrorCode.InvalidRequest);
    await rpc.sendNotification(Exit);
    assert.equal(await b.exited, 0, b.stderr());
    rpc.dispose();
  });

  it('shutdown with params null, then exit: 0', async () => {
    const b = bridge(daemon());
    // The raw writer and reader: vscode-jsonrpc's request API never sends a literal `params: null`.
    const writer = new StreamMessageWriter(b.child.stdin);
    const reader = new StreamMessageReader(b.child.stdout);
    const waiting = new Map<number, (message: Message) => void>();
    reader.listen((message) => {
      const id = (message as { id?: unknown }).id;
      if (typeof id === 'number') waiting.get(id)?.(message);
    });
    const answered = (id: number) => new Promise<Message>((resolve) => waiting.set(id, resolve));
    const initialized = answered(1);
    await writer.write({ jsonrpc: '2.0', id: 1, method: 'initialize', params: init } as Message);
    await initialized;
    const shutdown = answered(2);
    await writer.write({ jsonrpc: '2.0', id: 2, method: 'shutdown', params: null } as unknown as Message);
    assert.deepEqual(await shutdown, { jsonrpc: '2.0', id: 2, result: null });
    await writer.write({ jsonrpc: '2.0', method: 'exit', params: null } as unknown as Message);
    assert.equal(await b.exited, 0, b.stderr());
    reader.dispose();
  });

  it('exit without shutdown ends the bridge with 1', async () => {
    const b = bridge(daemon());
    const rpc = connectionTo(b);
    await rpc.sendRequest('initialize', init);
    await rpc.sendNotification(Exit);
    assert.equal(await b.exited, 1, b.stderr());
    rpc.dispose();
  });

  it('the daemon closes a socket connection on exit, and keeps running', async () => {
    const client = await daemon().client();
    // The test client is the project's own vscode-jsonrpc: methods by name.
    await client.rpc.sendRequest('shutdown');
    await client.rpc.sendNotification('exit');
    await client.closed;
    const again = await daemon().client();
    assert.ok(Array.isArray((await again.rpc.sendRequest<{ sessions: unknown[] }>('session/list', {})).sessions));
    again.close();
  });

  it('--home without a directory is a usage error for stdio, mcp and acp; stdout stays empty', async () => {
    for (const command of ['stdio', 'mcp', 'acp']) {
      const run = await runAgentd(daemon().layout, [command, '--home']);
      assert.equal(run.code, 2, `${command}: ${run.stderr}`);
      assert.match(run.stderr, /--home/);
      assert.equal(run.stdout, '');
    }
  });
});
