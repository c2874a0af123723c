import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { Transport } from '../rpc/transport.js';

/**
 * One JSON-RPC message per WebSocket message (text or binary). The WebSocket server
 * caps a message at MAX_FRAME_BYTES from its frame headers, before buffering it, and
 * closes with 1009 past it; permessage-deflate is off, so what ws sends goes straight
 * to `socket`, whose buffered bytes are then the connection's backlog as on the unix socket.
 */
export function webSocketTransport(ws: WebSocket, socket: Socket): Transport {
  return {
    socket,
    read(onMessage) {
      ws.on('message', (data) => {
        // binaryType 'nodebuffer': one Buffer per message, fragments joined.
        onMessage(data as Buffer);
      });
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    write(json, done) {
      ws.send(json, { binary: false }, done);
    },
    get writable() {
      return ws.readyState === WebSocket.OPEN;
    },
    end: () => ws.close(1000),
    // A WebSocket has no half-close: the peer is done when the connection is.
    onPeerEnd: () => undefined,
  };
}
