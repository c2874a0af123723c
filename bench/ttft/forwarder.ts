/**
 * The floor of any design with a process between the client and the model: a minimal
 * forwarder, in a child process, that takes a request over the same transport as the
 * daemon (vscode-jsonrpc, LSP framing, a unix socket), sends its body to the emulator with
 * the same SDK, and passes every streamed fragment back as a notification. Nothing is
 * validated, logged or made durable. What the daemon's time to first token costs beyond
 * this is the daemon's own; what this costs beyond the SDK called directly is the two
 * process hops the design has.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { API_KEY, THIS_FILE } from './common.js';

/** `--forwarder SOCKET URL`: serves `forward` requests on SOCKET, to the emulator at URL. */
export async function forwarderChild(socketPath: string, url: string): Promise<void> {
  const api = new Anthropic({ baseURL: url, apiKey: API_KEY, maxRetries: 0 });
  const server = createServer((socket) => {
    const connection = createMessageConnection(new StreamMessageReader(socket), new StreamMessageWriter(socket));
    // A turn: its model calls in a row (a tool turn has two), the first delta and the end notified.
    connection.onRequest('forward', ({ id, bodies }: { id: number; bodies: Array<Record<string, unknown>> }) => {
      void (async () => {
        for (const { stream: _stream, ...params } of bodies) {
          const stream = api.messages.stream(params as unknown as Anthropic.MessageStreamParams);
          // Every fragment goes to the client, as the daemon streams them: a floor that
          // passed on less would be doing less than the job.
          stream.on('streamEvent', (event) => {
            if (event.type !== 'content_block_delta') return;
            const text = event.delta.type === 'text_delta' ? event.delta.text : event.delta.type === 'input_json_delta' ? event.delta.partial_json : '';
            void connection.sendNotification('delta', { id, index: event.index, text });
          });
          await stream.finalMessage();
        }
        await connection.sendNotification('done', { id });
      })();
      return {};
    });
    connection.listen();
  });
  server.listen(socketPath, () => process.send!('ready'));
  process.on('disconnect', () => process.exit(0));
}

/** Forwarders started in this process: each gets a socket of its own. */
let started = 0;

export class Forwarder {
  private nextId = 1;
  private readonly turns = new Map<number, { delta(): void; done(): void }>();

  private constructor(
    private readonly child: ChildProcess,
    private readonly connection: MessageConnection,
  ) {
    connection.onNotification('delta', ({ id }: { id: number }) => this.turns.get(id)?.delta());
    connection.onNotification('done', ({ id }: { id: number }) => this.turns.get(id)?.done());
    connection.listen();
  }

  static async start(url: string, dir: string): Promise<Forwarder> {
    const socketPath = join(dir, `forwarder-${started++}.sock`);
    const child = fork(THIS_FILE, ['--forwarder', socketPath, url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`forwarder exited (${code})`)));
    });
    const socket = connect(socketPath);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new Forwarder(child, createMessageConnection(new StreamMessageReader(socket), new StreamMessageWriter(socket)));
  }

  /** One turn's model calls through the forwarder: time to the first delta's notification (as the daemon's turns are timed) and to the end. */
  async turn(bodies: Array<Record<string, unknown>>): Promise<{ ttft: number; total: number }> {
    const id = this.nextId++;
    let first = NaN;
    const done = new Promise<void>((resolve) => this.turns.set(id, { delta: () => (first = Number.isNaN(first) ? performance.now() : first), done: resolve }));
    const t0 = performance.now();
    await this.connection.sendRequest('forward', { id, bodies });
    await done;
    this.turns.delete(id);
    return { ttft: first - t0, total: performance.now() - t0 };
  }

  close(): void {
    this.connection.dispose();
    if (this.child.connected) this.child.disconnect();
    this.child.kill();
  }
}
