import { AbstractMessageReader, AbstractMessageWriter, Disposable, type DataCallback, type Message, type MessageWriter } from 'vscode-jsonrpc/node';
import type { FrameError } from '../../protocol/index.js';
import { classify, type Inbound } from './envelope.js';
import type { Transport } from './transport.js';

/** What was wrong with a message the peer sent. `fatal` problems end the connection. */
export type FrameProblem =
  | { kind: 'parse'; message: string; fatal: false }
  | { kind: 'too_large'; message: string; fatal: true }
  | { kind: 'header'; message: string; fatal: true };

/**
 * Decides what happens to each parsed message: handed to the connection, dropped (the
 * gate answered or logged it), or held until `resume()` (the connection is saturated:
 * the reader stops reading, so the peer's writes back up instead of the daemon's memory).
 */
export type InboundGate = (inbound: Inbound, frameBytes: number) => 'deliver' | 'drop' | 'hold';

/** What arrived, in order: a message's bytes, or the problem that ended the stream. */
type Arrival = { body: Uint8Array } | { broken: FrameError };

/**
 * The checks a daemon needs that vscode-jsonrpc's readers leave out, whatever the
 * transport: malformed JSON reported (-32700), every envelope judged before the
 * library sees it, and flow control through the gate. While the gate holds a message,
 * reading stops, and what had already arrived waits behind it in order.
 */
export class GatedMessageReader extends AbstractMessageReader {
  private callback: DataCallback | undefined;
  private stopped = false;
  /** The message the gate held, with its size, then whatever arrived after it. */
  private held: { inbound: Inbound; bytes: number } | undefined;
  private readonly waiting: Arrival[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly onProblem: (problem: FrameProblem) => void,
    private readonly gate: InboundGate,
  ) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const { socket } = this.transport;
    const onError = (error: Error) => this.fireError(error);
    const onClose = () => this.fireClose();
    socket.on('error', onError);
    socket.on('close', onClose);
    this.transport.read(
      (body) => this.arrive({ body }),
      (broken) => this.arrive({ broken }),
    );
    return Disposable.create(() => {
      this.stopped = true;
      socket.off('error', onError);
      socket.off('close', onClose);
    });
  }

  /** Tries a held message again; reading carries on once it and what waited behind it have passed. */
  resume(): void {
    if (!this.held || this.stopped) return;
    const { inbound, bytes } = this.held;
    this.held = undefined;
    if (!this.admit(inbound, bytes)) return;
    while (!this.held && !this.stopped && this.waiting.length > 0) this.process(this.waiting.shift()!);
    if (!this.held) this.transport.resume();
  }

  private arrive(arrival: Arrival): void {
    if (this.stopped) return;
    if (this.held) this.waiting.push(arrival);
    else this.process(arrival);
  }

  private process(arrival: Arrival): void {
    if ('broken' in arrival) {
      this.stopped = true;
      this.waiting.length = 0;
      this.onProblem({ kind: arrival.broken.kind, message: arrival.broken.message, fatal: true });
      return;
    }
    const inbound = this.decode(arrival.body);
    if (inbound) this.admit(inbound, arrival.body.length);
  }

  /** True when the message was delivered or dropped; false when the gate held it. */
  private admit(inbound: Inbound, bytes: number): boolean {
    const verdict = this.gate(inbound, bytes);
    if (verdict === 'hold') {
      this.held = { inbound, bytes };
      this.transport.pause();
      return false;
    }
    if (verdict === 'deliver' && (inbound.kind === 'request' || inbound.kind === 'response')) this.callback?.(inbound.message);
    return true;
  }

  private decode(body: Uint8Array): Inbound | undefined {
    try {
      // fatal: bytes that are not UTF-8 are a parse error, not silently replaced.
      return classify(JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body)));
    } catch (error) {
      this.onProblem({ kind: 'parse', message: `parse error: ${(error as Error).message}`, fatal: false });
      return undefined;
    }
  }
}

/**
 * Writes each message to the transport at once, without vscode-jsonrpc's writer queue:
 * that queue waits for each write to flush before encoding the next, so for a client
 * that stops reading it held every pending message as objects, uncounted. Here what
 * waits is bytes in the socket's buffer, which `socket.writableLength` measures.
 *
 * A response is done once it is in the buffer (the library then lets go of the result);
 * a notification or request resolves only when flushed, so a subscription that awaits
 * its batch is held back by a client that does not read.
 */
export class TransportMessageWriter extends AbstractMessageWriter implements MessageWriter {
  private errors = 0;

  constructor(
    private readonly transport: Transport,
    /** Told of every message written, once it is in the socket's buffer. */
    private readonly onWritten: (message: Message) => void = () => undefined,
  ) {
    super();
  }

  write(message: Message): Promise<void> {
    let json: string;
    try {
      json = JSON.stringify(message);
    } catch (error) {
      this.fireError(error, message, ++this.errors);
      return Promise.reject(error);
    }
    if (!this.transport.writable) return Promise.resolve();
    const flushed = new Promise<void>((resolve, reject) =>
      this.transport.write(json, (error) => {
        if (!error) return resolve();
        this.fireError(error, message, ++this.errors);
        reject(error);
      }),
    );
    this.onWritten(message);
    if ('method' in message) return flushed;
    flushed.catch(() => undefined);
    return Promise.resolve();
  }

  end(): void {
    this.transport.end();
  }
}
