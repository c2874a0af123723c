/**
 * The one thing a sandbox's host sends outside besides its MCP answers: the listening socket
 * of the proxy's loopback port, opened inside the sandbox's network namespace and handed over
 * once through node's IPC channel, so that the daemon's proxy accepts the sandbox's
 * connections itself and no process inside copies their bytes.
 *
 * The channel is attack surface into the daemon, so it lives only while the sandbox has run
 * nothing but the host's own code: from the launch to the host's configuration, which waits
 * for the daemon to close the channel before it starts the shell or any server of the
 * session. Exactly one message is accepted, `{ kind: 'proxy-listener' }` with a listening TCP
 * server on 127.0.0.1 (at the port asked for, unless any port was); anything else (another
 * message, another handle, a handle of another kind, a message before the configuration asks
 * for one) condemns the sandbox. Node parses the channel's bytes before any of this code sees
 * them, and raises bytes that are not a message at all as an exception of the receiving
 * process: that is why nothing but the host's own code may ever hold the other end.
 */
import type { ChildProcess } from 'node:child_process';
import { Socket as DgramSocket } from 'node:dgram';
import { Server, Socket } from 'node:net';
import * as z from 'zod/mini';

const ListenerMessage = z.strictObject({ kind: z.literal('proxy-listener') });

export class ListenerHandover {
  private expected: { port: number; received(listener: Server): void } | null = null;
  private done = false;

  constructor(
    private readonly child: ChildProcess,
    /** Ends the sandbox, saying why (its calls are reported sandbox_lost). */
    private readonly condemn: (why: string) => void,
  ) {
    child.on('message', (message: unknown, handle: unknown) => this.receive(message, handle));
  }

  /** The listener the host opens on 127.0.0.1:port (0: any) once configured; resolves when it has arrived. */
  expect(port: number): Promise<Server> {
    return new Promise((resolve) => {
      this.expected = { port, received: resolve };
    });
  }

  /** No listener will be asked for (any more): the channel closes. */
  close(): void {
    this.done = true;
    this.expected = null;
    if (this.child.connected) this.child.disconnect();
  }

  private receive(message: unknown, handle: unknown): void {
    const expected = this.expected;
    const why = this.done || !expected ? 'a message nobody asked for' : this.refusal(message, handle, expected.port);
    if (why === null && expected) {
      this.close();
      expected.received(handle as Server);
      return;
    }
    discard(handle);
    this.close();
    this.condemn(`its host sent ${why} on its handover channel`);
  }

  /** Why `message` and `handle` are not the listener asked for; null when they are. */
  private refusal(message: unknown, handle: unknown, port: number): string | null {
    if (!ListenerMessage.safeParse(message).success) return `an unknown message (${JSON.stringify(message)?.slice(0, 200)})`;
    if (!(handle instanceof Server)) return 'a proxy-listener message without a listening socket';
    const address = handle.address();
    if (address === null || typeof address === 'string' || address.address !== '127.0.0.1' || address.family !== 'IPv4') {
      return `a listener on ${JSON.stringify(address)}, not on 127.0.0.1`;
    }
    if (port !== 0 && address.port !== port) return `a listener on port ${address.port}, not ${port}`;
    return null;
  }
}

/** Closes a handle that came with a refused message, whatever its kind. */
function discard(handle: unknown): void {
  if (handle instanceof Server || handle instanceof DgramSocket) handle.close();
  else if (handle instanceof Socket) handle.destroy();
}
