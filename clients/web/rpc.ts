/**
 * The page's JSON-RPC over the daemon's WebSocket: one message per WebSocket message,
 * the same protocol every client speaks. Methods and their schemas come from protocol/:
 * a wrong method name or params does not compile, and what the daemon sends is checked
 * with the protocol's zod schemas before the page uses it, as every client does.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { ClientRequests, DaemonMessages, type ClientMethod } from '../../protocol/registry.js';
import type { z } from 'zod';

type Params<M extends ClientMethod> = z.input<(typeof ClientRequests)[M]['params']>;
type Result<M extends ClientMethod> = z.output<(typeof ClientRequests)[M]['result']>;
type DaemonMethod = keyof typeof DaemonMessages;
type DaemonParams<M extends DaemonMethod> = z.output<(typeof DaemonMessages)[M]['params']>;

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

/** What a request still waiting gets when the connection closes: vscode-jsonrpc's code for it, as the other clients get. */
const PENDING_RESPONSE_REJECTED = -32097;

type Id = number | string;
interface Incoming {
  id?: Id | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** Answers a daemon → client request; `signal` aborts when the daemon withdraws it ($/cancelRequest). */
export type RequestHandler<M extends DaemonMethod> = (params: DaemonParams<M>, signal: AbortSignal) => Promise<unknown>;

export class Rpc {
  private nextId = 1;
  private readonly pending = new Map<Id, { method: ClientMethod; resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly notifications = new Map<string, (params: unknown) => void>();
  private readonly handlers = new Map<string, (params: unknown, signal: AbortSignal) => Promise<unknown>>();
  /** Daemon requests being answered, so that $/cancelRequest can withdraw them. */
  private readonly answering = new Map<Id, AbortController>();
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => this.receive(String(event.data)));
    this.closed = new Promise((resolve) =>
      ws.addEventListener('close', (event) => {
        for (const { reject } of this.pending.values()) reject(new RpcError(PENDING_RESPONSE_REJECTED, 'the connection to the daemon closed'));
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
      this.pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject });
      this.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  onNotification<M extends DaemonMethod>(method: M, handler: (params: DaemonParams<M>) => void): void {
    this.notifications.set(method, handler as (params: unknown) => void);
  }

  onRequest<M extends DaemonMethod>(method: M, handler: RequestHandler<M>): void {
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
      if (message.error) return waiter.reject(new RpcError(message.error.code, message.error.message, message.error.data));
      const result = ClientRequests[waiter.method].result.safeParse(message.result);
      if (result.success) waiter.resolve(result.data);
      else waiter.reject(new RpcError(ErrorCode.InvalidParams, `malformed ${waiter.method} result from the daemon: ${result.error.message}`));
      return;
    }
    if (message.method === '$/cancelRequest') {
      this.answering.get((message.params as { id: Id }).id)?.abort();
      return;
    }
    const method = message.method as DaemonMethod;
    const params = Object.hasOwn(DaemonMessages, method) ? DaemonMessages[method].params.safeParse(message.params) : undefined;
    if (message.id === undefined || message.id === null) {
      // A notification the page does not know or cannot read is passed over (said in the console).
      if (params?.success) this.notifications.get(method)?.(params.data);
      else if (params) console.warn(`agentd: malformed ${method} from the daemon: ${params.error.message}`);
      return;
    }
    if (params && !params.success) return this.send({ jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: params.error.message } });
    this.answer(message.id, method, params?.data);
  }

  private answer(id: Id, method: string, params: unknown): void {
    const handler = this.handlers.get(method);
    if (!handler) return this.send({ jsonrpc: '2.0', id, error: { code: ErrorCode.MethodNotFound, message: `the page does not answer ${method}` } });
    const controller = new AbortController();
    this.answering.set(id, controller);
    handler(params, controller.signal).then(
      (result) => this.send({ jsonrpc: '2.0', id, result }),
      (error: unknown) =>
        this.send({
          jsonrpc: '2.0',
          id,
          error: controller.signal.aborted
            ? { code: ErrorCode.RequestCancelled, message: 'withdrawn' }
            : { code: error instanceof RpcError ? error.code : ErrorCode.InternalError, message: String((error as Error)?.message ?? error) },
        }),
    ).finally(() => this.answering.delete(id));
  }
}
