/**
 * LSP framing (`Content-Length: N\r\n\r\n` + body), at the byte level: the daemon's
 * socket reader and the remote bridge (which turns a framed stream into WebSocket
 * messages) cut streams with this one splitter. It never parses the body. Plain
 * Uint8Array, nothing of Node's.
 */
import { ErrorCode } from './errors.js';

/** The largest message either side accepts: a frame's body, or one WebSocket message. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** A header block longer than this, with no end in sight, is not LSP framing. */
const MAX_HEADER_BYTES = 8192;

/** Why a stream cannot be read on: the header is bad, or it announces too big a body. */
export class FrameError extends Error {
  constructor(
    readonly kind: 'header' | 'too_large',
    message: string,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

function concat(chunks: readonly Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const all = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** Where `\r\n\r\n` starts within the first `limit` bytes, or -1. */
function headerEnd(bytes: Uint8Array, limit: number): number {
  const stop = Math.min(bytes.length, limit) - 3;
  for (let i = 0; i < stop; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

/**
 * Cuts a byte stream into frame bodies. `push` bytes as they come; `next` gives the
 * next whole body or undefined while more bytes are needed. A bad header or a body
 * over the limit (judged from the header, before any of it is buffered) throws a
 * FrameError, then and on every later call: the stream cannot be trusted any more.
 */
export class FrameSplitter {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private bodyLength = -1;
  private broken: FrameError | undefined;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  push(chunk: Uint8Array): void {
    if (this.broken || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  next(): Uint8Array | undefined {
    if (this.broken) throw this.broken;
    if (this.bodyLength < 0 && !this.readHeader()) return undefined;
    if (this.buffered < this.bodyLength) return undefined;
    const body = this.take(this.bodyLength);
    this.bodyLength = -1;
    return body;
  }

  private take(length: number): Uint8Array {
    const all = concat(this.chunks, this.buffered);
    const rest = all.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return all.subarray(0, length);
  }

  private readHeader(): boolean {
    const all = concat(this.chunks, this.buffered);
    this.chunks = all.length > 0 ? [all] : [];
    const end = headerEnd(all, MAX_HEADER_BYTES + 4);
    if (end < 0) {
      if (all.length > MAX_HEADER_BYTES) this.fail('header', 'header block too long');
      return false;
    }
    const header = String.fromCharCode(...all.subarray(0, end));
    this.take(end + 4);
    const lengths = new Set<string>();
    for (const line of header.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'content-length') lengths.add(line.slice(colon + 1).trim());
    }
    const [text] = lengths;
    if (lengths.size !== 1 || !/^\d{1,15}$/.test(text!)) this.fail('header', 'missing, repeated or bad Content-Length header');
    const length = Number(text);
    if (length > this.maxFrameBytes) this.fail('too_large', `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
    this.bodyLength = length;
    return true;
  }

  private fail(kind: FrameError['kind'], message: string): never {
    this.chunks = [];
    this.buffered = 0;
    this.broken = new FrameError(kind, message);
    throw this.broken;
  }
}

/**
 * The error code a reader answers a broken frame with (id null): a body that is not
 * JSON is a parse error, as is a bad header; a frame over the limit is MessageTooLarge.
 * After a header problem or an oversized frame the connection is closed.
 */
export function frameProblemCode(kind: 'parse' | FrameError['kind']): number {
  return kind === 'too_large' ? ErrorCode.MessageTooLarge : ErrorCode.ParseError;
}

/** The header that goes before a body of `length` bytes. */
export function frameHeader(length: number): string {
  return `Content-Length: ${length}\r\n\r\n`;
}
