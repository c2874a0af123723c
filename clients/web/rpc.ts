/**
 * The page's JSON-RPC over the daemon's WebSocket: one message per WebSocket message,
 * the same protocol every client speaks. Types come from protocol/ (type-only: the
 * page ships no schema library), so a wrong method name or params does not compile.
 */
import type { ClientMethod, ClientRequests, DaemonMessages } from '../../protocol/registry.js';
import type { z } from 'zod';

type Params<M extends ClientMethod> = z.input<ClientRequests[M]['params']>;
type Result<M extends ClientMethod> = z.output<ClientRequests[M]['result']>;
type DaemonParams<M extends keyof typeof DaemonMessages> = z.output<(typeof DaemonMessages)[M]['params']>;

/** An error answer from the daemon, with its stable code (protocol/errors.ts). */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

type Id = number | string;
interface Incoming {
  id?: Id | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** Answers a daemon → client request; `signal` aborts when the daemon withdraws it ($/cancelRequest). */
export type RequestHandler<M extends keyof typeof DaemonMessages> = (params: DaemonParams<M>, signal: AbortSignal) => Promise<unknown>;

export class Rpc {
  private nextId = 1;
  private readonly pending = new Map<Id, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly notifications = new Map<string, (params: unknown) => void>();
  private readonly handlers = new Map<string, (params: unknown, signal: AbortSignal) => Promise<unknown>>();
  /** Daemon requests being answered, so that $/cancelRequest can withdraw them. */
  private readonly answering = new Map<Id, AbortController>();
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => this.receive(String(event.data)));
    this.closed = new Promise((resolve) =>
      ws.addEventListener('close', (event) => {
        for (const { reject } of this.pending.values()) reject(new RpcError(-32099, 'the connection to the daemon closed'));
        this.pending.clear();
        for (const controller of this.answering.values()) controller.abort();
        resolve({ code: event.code, reason: event.reason });
      }),
    );
  }

  /** Opens the daemon's WebSocket on this page's origin; the login cookie goes with it. */
  static open(): Promise<Rpc> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rpc`);
      ws.addEventListener('open', () => resolve(new Rpc(ws)), { once: true });
      ws.addEventListener('error', () => reject(new Error('the daemon refused or dropped the connection')), { once: true });
    });
  }

  request<M extends ClientMethod>(method: M, params: Params<M>): Promise<Result<M>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  onNotification<M extends keyof typeof DaemonMessages>(method: M, handler: (params: DaemonParams<M>) => void): void {
    this.notifications.set(method, handler as (params: unknown) => void);
  }

  onRequest<M extends keyof typeof DaemonMessages>(method: M, handler: RequestHandler<M>): void {
    this.handlers.set(method, handler as (params: unknown, signal: AbortSignal) => Promise<unknown>);
  }

  close(): void {
    this.ws.close(1000);
  }

  private send(message: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private receive(text: string): void {
    let message: Incoming;
    try {
      message = JSON.parse(text) as Incoming;
    } catch {
      return;
    }
    if (message.method === undefined) {
      const waiter = message.id === undefined || message.id === null ? undefined : this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id!);
      if (message.error) waiter.reject(new RpcError(message.error.code, message.error.message, message.error.data));
      else waiter.resolve(message.result);
      return;
    }
    if (message.method === '$/cancelRequest') {
      this.answering.get((message.params as { id: Id }).id)?.abort();
      return;
    }
    if (message.id === undefined || message.id === null) {
      this.notifications.get(message.method)?.(message.params);
      return;
    }
    this.answer(message.id, message.method, message.params);
  }

  private answer(id: Id, method: string, params: unknown): void {
    const handler = this.handlers.get(method);
    if (!handler) return this.send({ jsonrpc: '2.0', id, error: { code: -32601, message: `the page does not answer ${method}` } });
    const controller = new AbortController();
    this.answering.set(id, controller);
    handler(params, controller.signal).then(
      (result) => this.send({ jsonrpc: '2.0', id, result }),
      (error: unknown) =>
        this.send({
          jsonrpc: '2.0',
          id,
          error: controller.signal.aborted ? { code: -32800, message: 'withdrawn' } : { code: error instanceof RpcError ? error.code : -32603, message: String((error as Error)?.message ?? error) },
        }),
    ).finally(() => this.answering.delete(id));
  }
}
