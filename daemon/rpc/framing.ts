import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { AbstractMessageReader, AbstractMessageWriter, Disposable, type DataCallback, type Message, type MessageWriter } from 'vscode-jsonrpc/node';
import { classify, type Inbound } from './envelope.js';

/** What was wrong with a frame the peer sent. `fatal` problems end the connection. */
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

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 8192;

/**
 * LSP framing (`Content-Length: N\r\n\r\n` + JSON) with the checks a daemon needs
 * that vscode-jsonrpc's reader leaves out: a frame-size cap enforced from the header
 * (before buffering the body), malformed JSON reported (-32700), every envelope
 * judged before the library sees it, and flow control through the gate.
 */
export class FramedMessageReader extends AbstractMessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private bodyLength = -1;
  private stopped = false;
  private callback: DataCallback | undefined;
  /** A message the gate held, with its frame size; nothing after it is processed until it passes. */
  private held: { inbound: Inbound; bytes: number } | undefined;

  constructor(
    private readonly input: Readable,
    private readonly maxFrameBytes: number,
    private readonly onProblem: (problem: FrameProblem) => void,
    private readonly gate: InboundGate,
  ) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (chunk: Buffer) => this.onData(chunk);
    const onError = (error: Error) => this.fireError(error);
    const onClose = () => this.fireClose();
    this.input.on('data', onData);
    this.input.on('error', onError);
    this.input.on('close', onClose);
    return Disposable.create(() => {
      this.input.off('data', onData);
      this.input.off('error', onError);
      this.input.off('close', onClose);
    });
  }

  /** Tries a held message again; reading carries on once it has passed. */
  resume(): void {
    if (!this.held || this.stopped) return;
    const { inbound, bytes } = this.held;
    this.held = undefined;
    if (!this.admit(inbound, bytes)) return;
    this.process();
    if (!this.held) this.input.resume();
  }

  private take(length: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const head = all.subarray(0, length);
    const rest = all.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return head;
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (!this.held) this.process();
  }

  /** Frames out of the buffered bytes until more are needed, the gate holds one, or the stream is bad. */
  private process(): void {
    while (!this.stopped && !this.held) {
      if (this.bodyLength < 0 && !this.readHeader()) return;
      if (this.buffered < this.bodyLength) return;
      const bytes = this.bodyLength;
      const body = this.take(bytes);
      this.bodyLength = -1;
      const inbound = this.decode(body);
      if (inbound) this.admit(inbound, bytes);
    }
  }

  /** True when the message was delivered or dropped; false when the gate held it. */
  private admit(inbound: Inbound, bytes: number): boolean {
    const verdict = this.gate(inbound, bytes);
    if (verdict === 'hold') {
      this.held = { inbound, bytes };
      this.input.pause();
      return false;
    }
    if (verdict === 'deliver' && (inbound.kind === 'request' || inbound.kind === 'response')) this.callback?.(inbound.message);
    return true;
  }

  /** Parses one header block; false when more bytes are needed (or the connection is done). */
  private readHeader(): boolean {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    const end = all.indexOf(HEADER_END);
    if (end < 0) {
      if (all.length > MAX_HEADER_BYTES) this.fatal({ kind: 'header', message: 'header block too long', fatal: true });
      return false;
    }
    const header = all.subarray(0, end).toString('latin1');
    this.take(end + HEADER_END.length);
    const lengths = new Set<string>();
    for (const line of header.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'content-length') lengths.add(line.slice(colon + 1).trim());
    }
    const [text] = lengths;
    if (lengths.size !== 1 || !/^\d{1,15}$/.test(text!)) {
      this.fatal({ kind: 'header', message: 'missing, repeated or bad Content-Length header', fatal: true });
      return false;
    }
    const length = Number(text);
    if (length > this.maxFrameBytes) {
      this.fatal({ kind: 'too_large', message: `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`, fatal: true });
      return false;
    }
    this.bodyLength = length;
    return true;
  }

  private decode(body: Buffer): Inbound | undefined {
    try {
      // fatal: bytes that are not UTF-8 are a parse error, not silently replaced.
      return classify(JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body)));
    } catch (error) {
      this.onProblem({ kind: 'parse', message: `parse error: ${(error as Error).message}`, fatal: false });
      return undefined;
    }
  }

  private fatal(problem: FrameProblem): void {
    this.stopped = true;
    this.chunks = [];
    this.buffered = 0;
    this.held = undefined;
    this.onProblem(problem);
  }
}

/**
 * Frames each message onto the socket at once, without vscode-jsonrpc's writer queue:
 * that queue waits for each write to flush before encoding the next, so for a client
 * that stops reading it held every pending message as objects, uncounted. Here what
 * waits is bytes in the socket's buffer, which `socket.writableLength` measures.
 *
 * A response is done once it is in the buffer (the library then lets go of the result);
 * a notification or request resolves only when flushed, so a subscription that awaits
 * its batch is held back by a client that does not read.
 */
export class FramedMessageWriter extends AbstractMessageWriter implements MessageWriter {
  private errors = 0;

  constructor(
    private readonly socket: Socket,
    /** Told of every message written, once it is in the socket's buffer. */
    private readonly onWritten: (message: Message) => void = () => undefined,
  ) {
    super();
  }

  write(message: Message): Promise<void> {
    let frame: Buffer;
    try {
      const body = Buffer.from(JSON.stringify(message), 'utf8');
      frame = Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
    } catch (error) {
      this.fireError(error, message, ++this.errors);
      return Promise.reject(error);
    }
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    const flushed = new Promise<void>((resolve, reject) =>
      this.socket.write(frame, (error) => {
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
    this.socket.end();
  }
}
