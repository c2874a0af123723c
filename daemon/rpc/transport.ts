import type { Socket } from 'node:net';
import { FrameError, FrameSplitter, frameHeader, MAX_FRAME_BYTES } from '../../protocol/index.js';

/**
 * How one connection's messages travel: LSP frames on a stream socket (the unix
 * socket), or one WebSocket message each (the network listener, daemon/remote). Every
 * check and limit sits above this (framing.ts, guard.ts, serve.ts), so both get the same.
 */
export interface Transport {
  /** The socket underneath: its unflushed bytes are the connection's backlog, and its 'drain' and 'close' are the connection's. */
  readonly socket: Socket;
  /**
   * Starts reading: each message's bytes in order, then, if the stream turns out bad
   * (a framing error), the problem; nothing comes after a problem.
   */
  read(onMessage: (body: Uint8Array) => void, onBroken: (problem: FrameError) => void): void;
  /** Stops reading from the peer (backpressure); messages already read may still come. */
  pause(): void;
  resume(): void;
  /** One message; `done` once it has been handed to the OS, or failed. */
  write(json: string, done: (error?: Error | null) => void): void;
  readonly writable: boolean;
  /** Closes after what was written. */
  end(): void;
  /** Told when the peer is done sending but may still read (a half-close). */
  onPeerEnd(listener: () => void): void;
}

/** LSP framing over a stream socket; the frame size is capped from the header, before any of the body is buffered. */
export function streamTransport(socket: Socket, maxFrameBytes = MAX_FRAME_BYTES): Transport {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return {
    socket,
    read(onMessage, onBroken) {
      const splitter = new FrameSplitter(maxFrameBytes);
      let broken = false;
      socket.on('data', (chunk: Buffer) => {
        if (broken) return;
        splitter.push(chunk);
        try {
          for (let body = splitter.next(); body; body = splitter.next()) onMessage(body);
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
          broken = true;
          onBroken(error);
        }
      });
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    write(json, done) {
      // What is written in one turn of the event loop (the deltas of many sessions, the
      // replies and events that go with them) leaves in one writev, not a syscall each.
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      const body = Buffer.from(json, 'utf8');
      socket.write(frameHeader(body.length), 'ascii');
      socket.write(body, done);
    },
    get writable() {
      return !socket.destroyed && socket.writable;
    },
    end: () => socket.end(),
    onPeerEnd: (listener) => socket.on('end', listener),
  };
}
