/**
 * The LSP lifecycle as `agentd stdio` must keep it: the process an editor started
 * exits on the `exit` notification, with 0 when `shutdown` came before and 1 when not.
 * The bridge stays a byte pipe: it forwards every byte unchanged and only reads the
 * editor's frames for these two methods. CommonJS, like the bridge.
 */
import type { Duplex, Readable } from 'node:stream';

/** Frames larger than this are passed on unread: `shutdown` and `exit` are a few dozen bytes. */
const READ_BODY_MAX = 64 * 1024;
const HEADER_MAX = 8 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

interface Frame {
  method: string | undefined;
  /** Has an id: a request, not a notification. */
  request: boolean;
  /** Where the frame ends in the chunk that completed it. */
  end: number;
}

/**
 * Finds LSP-framed (Content-Length) messages in a byte stream fed in chunks. A stream
 * it cannot frame is left to the daemon, which answers it with ParseError; the scanner
 * then stops looking.
 */
export class FrameScanner {
  private pending = Buffer.alloc(0);
  /** Body bytes of a large frame still to pass unread. */
  private skip = 0;
  private lost = false;

  push(chunk: Buffer): Frame[] {
    if (this.lost) return [];
    const frames: Frame[] = [];
    let at = 0;
    if (this.skip > 0) {
      at = Math.min(this.skip, chunk.length);
      this.skip -= at;
      if (this.skip > 0) return frames;
    }
    // `buffer` holds the unfinished frame's bytes (from earlier chunks) then this chunk's rest.
    const carried = this.pending.length;
    const buffer = carried > 0 ? Buffer.concat([this.pending, chunk.subarray(at)]) : chunk.subarray(at);
    const offset = at - carried; // buffer index + offset = chunk index
    let start = 0;
    for (;;) {
      const headerEnd = buffer.indexOf(HEADER_END, start);
      if (headerEnd < 0) {
        if (buffer.length - start > HEADER_MAX) this.lost = true;
        break;
      }
      const length = contentLength(buffer.toString('latin1', start, headerEnd));
      if (length === undefined) {
        this.lost = true;
        break;
      }
      const bodyStart = headerEnd + HEADER_END.length;
      if (length > READ_BODY_MAX) {
        const available = buffer.length - bodyStart;
        if (available < length) {
          this.skip = length - available;
          start = buffer.length;
          break;
        }
        start = bodyStart + length;
        frames.push({ method: undefined, request: false, end: start + offset });
        continue;
      }
      if (buffer.length - bodyStart < length) break;
      frames.push({ ...envelope(buffer.subarray(bodyStart, bodyStart + length)), end: bodyStart + length + offset });
      start = bodyStart + length;
    }
    this.pending = this.lost ? Buffer.alloc(0) : Buffer.from(buffer.subarray(start));
    return frames;
  }
}

function contentLength(header: string): number | undefined {
  const match = /^content-length:[ \t]*(\d{1,10})[ \t]*$/im.exec(header);
  return match ? Number(match[1]) : undefined;
}

function envelope(body: Buffer): { method: string | undefined; request: boolean } {
  try {
    const message: unknown = JSON.parse(body.toString('utf8'));
    if (typeof message !== 'object' || message === null) return { method: undefined, request: false };
    const method: unknown = Reflect.get(message, 'method');
    return { method: typeof method === 'string' ? method : undefined, request: 'id' in message };
  } catch {
    return { method: undefined, request: false };
  }
}

/**
 * Pipes the editor's bytes to the daemon (with backpressure) and watches for the
 * lifecycle: after `exit` nothing more is forwarded and the connection is ended.
 * `exitCode()` is what LSP asks of the process once `exit` came (undefined before).
 */
export function pipeEditorToDaemon(input: Readable, socket: Duplex): { exitCode(): number | undefined } {
  const scanner = new FrameScanner();
  let shutdown = false;
  let code: number | undefined;
  input.on('data', (chunk: Buffer) => {
    if (code !== undefined) return;
    for (const frame of scanner.push(chunk)) {
      if (frame.request && frame.method === 'shutdown') shutdown = true;
      if (!frame.request && frame.method === 'exit') {
        code = shutdown ? 0 : 1;
        socket.end(chunk.subarray(0, frame.end));
        input.pause();
        return;
      }
    }
    if (!socket.write(chunk)) input.pause();
  });
  socket.on('drain', () => {
    if (code === undefined) input.resume();
  });
  return { exitCode: () => code };
}
