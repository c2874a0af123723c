import type { Readable } from 'node:stream';
import { AbstractMessageReader, Disposable, type DataCallback, type Message } from 'vscode-jsonrpc/node';

/** What was wrong with a frame the peer sent. `fatal` problems end the connection. */
export type FrameProblem =
  | { kind: 'parse'; message: string; fatal: false }
  | { kind: 'invalid'; message: string; id: string | number | null; fatal: false }
  | { kind: 'too_large'; message: string; fatal: true }
  | { kind: 'header'; message: string; fatal: true };

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 8192;

/**
 * LSP framing (`Content-Length: N\r\n\r\n` + JSON) with the checks a daemon needs
 * that vscode-jsonrpc's reader leaves out: a frame-size cap enforced from the header
 * (before buffering the body), and malformed JSON or non-JSON-RPC bodies reported so
 * the daemon can answer -32700 / -32600 instead of dropping them silently.
 */
export class FramedMessageReader extends AbstractMessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private bodyLength = -1;
  private stopped = false;

  constructor(
    private readonly input: Readable,
    private readonly maxFrameBytes: number,
    private readonly onProblem: (problem: FrameProblem) => void,
  ) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    const onData = (chunk: Buffer) => this.onData(chunk, callback);
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

  private take(length: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const head = all.subarray(0, length);
    const rest = all.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return head;
  }

  private onData(chunk: Buffer, callback: DataCallback): void {
    if (this.stopped) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.stopped) {
      if (this.bodyLength < 0 && !this.readHeader()) return;
      if (this.buffered < this.bodyLength) return;
      const body = this.take(this.bodyLength);
      this.bodyLength = -1;
      const message = this.decode(body);
      if (message) callback(message);
    }
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
    const header = all.subarray(0, end).toString('ascii');
    this.take(end + HEADER_END.length);
    let length = -1;
    for (const line of header.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'content-length') {
        length = Number(line.slice(colon + 1).trim());
      }
    }
    if (!Number.isSafeInteger(length) || length < 0) {
      this.fatal({ kind: 'header', message: 'missing or bad Content-Length header', fatal: true });
      return false;
    }
    if (length > this.maxFrameBytes) {
      this.fatal({
        kind: 'too_large',
        message: `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`,
        fatal: true,
      });
      return false;
    }
    this.bodyLength = length;
    return true;
  }

  private decode(body: Buffer): Message | undefined {
    let value: unknown;
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch (error) {
      this.onProblem({ kind: 'parse', message: `parse error: ${(error as Error).message}`, fatal: false });
      return undefined;
    }
    const problem = invalidMessage(value);
    if (problem) {
      const id = isRecord(value) && (typeof value.id === 'string' || typeof value.id === 'number') ? value.id : null;
      this.onProblem({ kind: 'invalid', message: problem, id, fatal: false });
      return undefined;
    }
    return value as Message;
  }

  private fatal(problem: FrameProblem): void {
    this.stopped = true;
    this.chunks = [];
    this.buffered = 0;
    this.onProblem(problem);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why a parsed body is not a JSON-RPC 2.0 message, or undefined when it is one. */
function invalidMessage(value: unknown): string | undefined {
  if (Array.isArray(value)) return 'batch requests are not supported';
  if (!isRecord(value)) return 'a message must be a JSON object';
  if (value.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
  if ('method' in value) {
    if (typeof value.method !== 'string') return 'method must be a string';
    if ('params' in value && value.params !== undefined && (typeof value.params !== 'object' || value.params === null))
      return 'params must be an object or an array';
    return undefined;
  }
  if ('id' in value && ('result' in value || 'error' in value)) return undefined;
  return 'not a request, notification or response';
}
