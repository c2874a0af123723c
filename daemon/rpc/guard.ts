import type { Socket } from 'node:net';
import { CancellationTokenSource, type Message, type ResponseMessage } from 'vscode-jsonrpc/node';
import { ErrorCode } from '../../protocol/index.js';
import type { Logger } from '../logger.js';
import type { Inbound, RequestId } from './envelope.js';
import type { TransportMessageWriter } from './framing.js';
import type { ConnectionLimits } from './limits.js';

const key = (id: RequestId) => `${typeof id}:${id}`;

/** Problems logged per connection before it goes quiet: a flood of bad frames must not flood daemon.log. */
const LOGGED_PROBLEMS = 20;

/**
 * One connection's budget, applied to every message before vscode-jsonrpc sees it:
 * requests in flight (by count and by frame bytes), bytes waiting on the socket, the
 * responses it may send (only to requests the daemon asked), and cancellation, which
 * the daemon does itself so that no `$/cancelRequest` reaches the library.
 */
export class ConnectionGuard {
  private readonly inFlight = new Map<string, { bytes: number; cancel: CancellationTokenSource }>();
  private inFlightBytes = 0;
  /** Ids of requests the daemon sent this client and that it has not answered. */
  private readonly awaited = new Set<string>();
  /** Replies this guard wrote itself, which must not end an in-flight request of the same id. */
  private readonly own = new WeakSet<Message>();
  private logged = 0;
  /** Called when a held message may pass now. */
  onRoom: () => void = () => undefined;

  constructor(
    private readonly socket: Socket,
    private readonly limits: ConnectionLimits,
    private readonly logger: Logger,
    private readonly connId: number,
    private writer?: TransportMessageWriter,
  ) {
    socket.on('drain', () => this.onRoom());
  }

  attach(writer: TransportMessageWriter): void {
    this.writer = writer;
  }

  /** The reader's gate: see InboundGate. */
  readonly gate = (inbound: Inbound, frameBytes: number): 'deliver' | 'drop' | 'hold' => {
    // A client that does not read its answers gets no more work done for it.
    if (this.socket.writableLength > this.limits.maxBacklogBytes) return 'hold';
    switch (inbound.kind) {
      case 'request':
        return this.admitRequest(inbound.id, frameBytes);
      case 'cancel':
        this.inFlight.get(key(inbound.id))?.cancel.cancel();
        return 'drop';
      case 'response':
        if (inbound.id !== null && this.awaited.delete(key(inbound.id))) return 'deliver';
        this.problem('dropped a response to no request of the daemon', { id: inbound.id });
        return 'drop';
      case 'invalid':
        this.problem('invalid message', { detail: inbound.reason });
        this.answer(inbound.id, ErrorCode.InvalidRequest, inbound.reason);
        return 'drop';
      case 'ignored':
        this.problem('ignored message', { detail: inbound.reason });
        return 'drop';
    }
  };

  private admitRequest(id: RequestId, frameBytes: number): 'deliver' | 'drop' | 'hold' {
    const k = key(id);
    if (this.inFlight.has(k)) {
      this.answer(id, ErrorCode.InvalidRequest, `request id ${JSON.stringify(id)} is already in use by a request in flight on this connection`);
      return 'drop';
    }
    const max = this.limits.maxRequestsInFlight;
    if (this.inFlight.size >= max) {
      this.answer(id, ErrorCode.LimitExceeded, `${max} requests of this connection are still in flight; wait for answers before sending more`, { limit: 'requestsInFlight', max });
      return 'drop';
    }
    // Big requests wait for earlier ones to finish rather than pile up parsed in memory.
    if (this.inFlight.size > 0 && this.inFlightBytes + frameBytes > this.limits.maxInFlightBytes) return 'hold';
    this.inFlight.set(k, { bytes: frameBytes, cancel: new CancellationTokenSource() });
    this.inFlightBytes += frameBytes;
    return 'deliver';
  }

  /** vscode-jsonrpc's receiver strategy: the token of a request this guard admitted. */
  cancellationFor(id: RequestId): CancellationTokenSource {
    return this.inFlight.get(key(id))?.cancel ?? new CancellationTokenSource();
  }

  /** The writer's hook: a response ends its request; a request of the daemon's awaits its answer. */
  readonly written = (message: Message): void => {
    if (this.own.has(message)) return;
    const { id, method } = message as { id?: RequestId | null; method?: string };
    if (id === undefined || id === null) return;
    if (method !== undefined) {
      this.awaited.add(key(id));
      return;
    }
    const entry = this.inFlight.get(key(id));
    if (!entry) return;
    this.inFlight.delete(key(id));
    this.inFlightBytes -= entry.bytes;
    entry.cancel.dispose();
    this.onRoom();
  };

  /** An error reply written by the daemon itself, outside vscode-jsonrpc. */
  answer(id: RequestId | null, code: number, message: string, data?: unknown): void {
    const response: ResponseMessage = { jsonrpc: '2.0', id, error: { code, message, ...(data !== undefined ? { data } : {}) } };
    this.own.add(response);
    void this.writer?.write(response).catch(() => undefined);
  }

  problem(message: string, fields: Record<string, unknown>): void {
    this.logged++;
    if (this.logged <= LOGGED_PROBLEMS) this.logger.log('warn', message, { conn: this.connId, ...fields });
    if (this.logged === LOGGED_PROBLEMS) this.logger.log('warn', 'further problems on this connection are not logged', { conn: this.connId });
  }

  /** Cancels what still runs for a client that went away. */
  dispose(): void {
    for (const entry of this.inFlight.values()) entry.cancel.cancel();
  }
}
