/**
 * The page's JSON-RPC over the daemon's WebSocket: one message per WebSocket message,
 * the same protocol every client speaks. Methods and their schemas come from protocol/:
 * a wrong method name or params does not compile, and what the daemon sends is checked
 * with the protocol's zod schemas before the page uses it, as every client does. It has
 * what the shared follower (clients/lib/follower.ts) needs of a connection: subscriptions,
 * notifications by their definitions, daemon errors as AgentdError.
 */
import type { z } from 'zod';
import { AgentdError, ErrorCode, type ErrorCodeValue } from '../../protocol/errors.js';
import type { NotificationDefinition, RequestDefinition } from '../../protocol/define.js';
import { SessionEventNotification, SessionSubscribe, SessionUnsubscribe, SubscriptionDroppedNotification } from '../../protocol/methods/events.js';
import { ClientRequests, DaemonMessages, type ClientMethod } from '../../protocol/registry.js';
import type { FollowedConnection } from '../lib/follower.js';
import type { SubscriptionHandlers } from '../lib/client.js';

type Params<M extends ClientMethod> = z.input<(typeof ClientRequests)[M]['params']>;
type Result<M extends ClientMethod> = z.output<(typeof ClientRequests)[M]['result']>;
type DaemonMethod = keyof typeof DaemonMessages;

type Id = number | string;
interface Incoming {
  id?: Id | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

interface Disposable {
  dispose(): void;
}

export class Rpc implements FollowedConnection {
  private nextId = 1;
  private readonly pending = new Map<Id, { method: ClientMethod; resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly listeners = new Map<string, Set<(params: unknown) => void>>();
  private readonly handlers = new Map<string, (params: unknown, signal: AbortSignal) => Promise<unknown>>();
  private readonly subscriptions = new Map<string, SubscriptionHandlers>();
  /** Daemon requests being answered, so that $/cancelRequest can withdraw them. */
  private readonly answering = new Map<Id, AbortController>();
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => this.receive(String(event.data)));
    this.closed = new Promise((resolve) =>
      ws.addEventListener('close', (event) => {
        // Not an answer from the daemon (so not an AgentdError): the connection went.
        for (const { reject } of this.pending.values()) reject(new Error('the connection to the daemon closed'));
        this.pending.clear();
        for (const controller of this.answering.values()) controller.abort();
        resolve({ code: event.code, reason: event.reason });
      }),
    );
    this.onNotification(SessionEventNotification, ({ subscriptionId, events }) => this.subscriptions.get(subscriptionId)?.onEvents(events));
    this.onNotification(SubscriptionDroppedNotification, ({ subscriptionId, next, reason }) => {
      const handlers = this.subscriptions.get(subscriptionId);
      this.subscriptions.delete(subscriptionId);
      handlers?.onDropped?.(next, reason);
    });
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
      if (this.ws.readyState !== WebSocket.OPEN) return reject(new Error('the connection to the daemon is closed'));
      this.pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject });
      this.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Follows a session from `from` (default: the head): events go to `handlers` while the subscription lives. */
  async subscribe(sessionId: string, from: number | undefined, handlers: SubscriptionHandlers): Promise<{ subscriptionId: string; headSeq: number; unsubscribe(): Promise<void> }> {
    const result = await this.request(SessionSubscribe.method, from === undefined ? { sessionId } : { sessionId, from });
    // The daemon sends no batch before this answer, so registering now misses nothing.
    this.subscriptions.set(result.subscriptionId, handlers);
    return {
      ...result,
      unsubscribe: async () => {
        if (!this.subscriptions.delete(result.subscriptionId)) return;
        await this.request(SessionUnsubscribe.method, { subscriptionId: result.subscriptionId });
      },
    };
  }

  /** Hands a daemon notification, checked against its schema, to `handler` (one of any number). */
  onNotification<M extends string, P extends z.ZodType>(def: NotificationDefinition<M, P>, handler: (params: z.output<P>) => void): Disposable {
    let set = this.listeners.get(def.method);
    if (!set) this.listeners.set(def.method, (set = new Set()));
    const listener = handler as (params: unknown) => void;
    set.add(listener);
    return { dispose: () => void set.delete(listener) };
  }

  /** Answers a daemon request; `signal` aborts when the daemon withdraws it ($/cancelRequest). */
  onRequest<M extends string, P extends z.ZodType, R extends z.ZodType>(def: RequestDefinition<M, P, R>, handler: (params: z.output<P>, signal: AbortSignal) => Promise<z.input<R>>): void {
    this.handlers.set(def.method, handler as (params: unknown, signal: AbortSignal) => Promise<unknown>);
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
      if (message.error) return waiter.reject(new AgentdError(message.error.code as ErrorCodeValue, message.error.message, message.error.data));
      const result = ClientRequests[waiter.method].result.safeParse(message.result);
      if (result.success) waiter.resolve(result.data);
      else waiter.reject(new AgentdError(ErrorCode.InvalidParams, `malformed ${waiter.method} result from the daemon: ${result.error.message}`));
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
      if (params?.success) for (const listener of this.listeners.get(method) ?? []) listener(params.data);
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
            : { code: error instanceof AgentdError ? error.code : ErrorCode.InternalError, message: String((error as Error)?.message ?? error) },
        }),
    ).finally(() => this.answering.delete(id));
  }
}
