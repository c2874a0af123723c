import type { Duplex } from 'node:stream';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type CancellationToken,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import type { z } from 'zod';
import {
  AgentdError,
  ErrorCode,
  Initialize,
  PROTOCOL_VERSION,
  type ClientCapabilities,
  type ErrorCodeValue,
  type NotificationDefinition,
  type RequestDefinition,
  type Event,
  type ParamsOf,
  type PermissionDecision,
  DaemonStoppingNotification,
  PermissionRequest,
  SessionEventNotification,
  SessionSubscribe,
  SessionUnsubscribe,
  SubscriptionDroppedNotification,
} from '../../protocol/index.js';
import { dial, type DialOptions } from './dial.js';

export type PermissionQuestion = ParamsOf<typeof PermissionRequest>;
/** Answers a permission question; `signal` aborts when the daemon withdraws it (answered elsewhere, turn ended). */
export type PermissionHandler = (question: PermissionQuestion, signal: AbortSignal) => Promise<{ decision: PermissionDecision }>;

export interface ConnectOptions extends DialOptions {
  clientName: string;
  clientVersion?: string;
  capabilities?: ClientCapabilities;
  /**
   * Answers permission questions; registered before `initialize` so that questions the
   * daemon sends right after it are not missed. Setting it declares `permissionRequests`.
   */
  onPermissionRequest?: PermissionHandler;
}

/** What a subscription hands its events to (`AgentdClient.subscribe`). */
export interface SubscriptionHandlers {
  onEvents(events: Event[]): void;
  /** The daemon dropped a too-slow subscription; resubscribe from `next`. */
  onDropped?(next: number, reason: string): void;
}

/** Requests a client keeps in flight at most until the daemon says its own limit (in `initialize`). */
const DEFAULT_MAX_IN_FLIGHT = 64;

export type StoppingNotice = ParamsOf<typeof DaemonStoppingNotification>;

/**
 * The one typed connection every client uses (CLI, MCP, ACP, VS Code): requests and
 * notifications by their protocol constants, params checked before sending, results
 * and notifications validated on arrival, errors as AgentdError with the wire code.
 */
export class AgentdClient {
  private readonly closedPromise: Promise<void>;
  /**
   * Set when the daemon said it stops on purpose (`agentd stop`): once this connection
   * closes, do not start the daemon again on your own (see DialOptions.explicit).
   */
  stoppingNotice: StoppingNotice | undefined;
  /** Requests beyond the daemon's in-flight limit wait here instead of being refused by it. */
  private maxInFlight = DEFAULT_MAX_IN_FLIGHT;
  private inFlight = 0;
  private readonly queued: Array<() => void> = [];
  private readonly listeners = new Map<string, Set<(params: unknown) => void>>();
  private readonly subscriptions = new Map<string, SubscriptionHandlers>();

  constructor(
    readonly rpc: MessageConnection,
    private readonly socket?: Duplex,
  ) {
    this.closedPromise = new Promise((resolve) =>
      rpc.onClose(() => {
        // Disposing rejects requests still waiting for an answer that can no longer come.
        rpc.dispose();
        resolve();
      }),
    );
    this.onNotification(DaemonStoppingNotification, (notice) => (this.stoppingNotice = notice));
    this.onNotification(SessionEventNotification, ({ subscriptionId, events }) => this.subscriptions.get(subscriptionId)?.onEvents(events));
    this.onNotification(SubscriptionDroppedNotification, ({ subscriptionId, next, reason }) => {
      const handlers = this.subscriptions.get(subscriptionId);
      this.subscriptions.delete(subscriptionId);
      handlers?.onDropped?.(next, reason);
    });
  }

  /**
   * Follows a session from `from` (default: the head): catch-up, then live. Events
   * arrive in order without gaps or duplicates for as long as the subscription lives.
   */
  async subscribe(
    sessionId: string,
    from: number | undefined,
    handlers: SubscriptionHandlers,
  ): Promise<{ subscriptionId: string; headSeq: number; unsubscribe(): Promise<void> }> {
    const result = await this.request(SessionSubscribe, from === undefined ? { sessionId } : { sessionId, from });
    // The daemon sends no batch before this response, so registering now misses nothing.
    this.subscriptions.set(result.subscriptionId, handlers);
    return {
      ...result,
      unsubscribe: async () => {
        if (!this.subscriptions.delete(result.subscriptionId)) return;
        await this.request(SessionUnsubscribe, { subscriptionId: result.subscriptionId });
      },
    };
  }

  /** Settles when the connection is gone (daemon stopped, socket closed). */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  async request<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    params: z.input<P>,
  ): Promise<z.output<R>> {
    if (this.inFlight >= this.maxInFlight) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.inFlight++;
    try {
      const raw: unknown = await this.rpc.sendRequest(def.method, params);
      return def.result.parse(raw);
    } catch (error) {
      if (error instanceof ResponseError) throw new AgentdError(error.code as ErrorCodeValue, error.message, error.data);
      throw error;
    } finally {
      this.inFlight--;
      this.queued.shift()?.();
    }
  }

  /** The first request of a connection; adopts the daemon's limits. */
  async initialize(params: z.input<typeof Initialize.params>): Promise<z.output<typeof Initialize.result>> {
    const result = await this.request(Initialize, params);
    if (result.capabilities.maxRequestsInFlight !== undefined) this.maxInFlight = result.capabilities.maxRequestsInFlight;
    return result;
  }

  /** Handles a daemon → client notification; malformed ones are reported, not delivered. */
  onNotification<M extends string, P extends z.ZodType>(
    def: NotificationDefinition<M, P>,
    handler: (params: z.output<P>) => void,
  ): { dispose(): void } {
    let set = this.listeners.get(def.method);
    if (!set) {
      const listeners = new Set<(params: unknown) => void>();
      set = listeners;
      this.listeners.set(def.method, listeners);
      // vscode-jsonrpc keeps one handler per method; fan out to every listener here.
      this.rpc.onNotification(def.method, (raw: unknown) => {
        const parsed = def.params.safeParse(raw);
        if (!parsed.success) {
          process.emitWarning(`agentd: malformed ${def.method} from the daemon: ${parsed.error.message}`);
          return;
        }
        for (const listener of listeners) listener(parsed.data);
      });
    }
    const listener = handler as (params: unknown) => void;
    set.add(listener);
    return { dispose: () => void set.delete(listener) };
  }

  /**
   * Answers a daemon → client request; an AgentdError thrown by the handler goes back
   * with its code. `signal` aborts when the daemon cancels the request.
   */
  onRequest<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    handler: (params: z.output<P>, signal: AbortSignal) => Promise<z.input<R>>,
  ): { dispose(): void } {
    return this.rpc.onRequest(def.method, async (raw: unknown, token: CancellationToken) => {
      const parsed = def.params.safeParse(raw);
      if (!parsed.success) throw new ResponseError(ErrorCode.InvalidParams, parsed.error.message);
      const cancelled = new AbortController();
      if (token.isCancellationRequested) cancelled.abort();
      token.onCancellationRequested(() => cancelled.abort());
      return handler(parsed.data, cancelled.signal).catch((error: unknown) => Promise.reject(asResponseError(error)));
    });
  }

  close(): void {
    this.rpc.dispose();
    this.socket?.end();
  }
}

/** An AgentdError as the JSON-RPC error vscode-jsonrpc sends back with its code. */
export function asResponseError(error: unknown): unknown {
  return error instanceof AgentdError ? new ResponseError(error.code, error.message, error.data) : error;
}

/**
 * Refuses a question about a session this client does not drive. The daemon asks only a
 * session's controllers, so this is a second line: a client never answers for another.
 */
export function notOurSession(sessionId: string, who: string): AgentdError {
  return new AgentdError(ErrorCode.NotController, `${who} does not control ${sessionId} and does not answer its questions`, { sessionId });
}

/** A connected, initialized client. */
export async function connect(options: ConnectOptions): Promise<AgentdClient> {
  const socket = await dial(options);
  const rpc = createMessageConnection(new StreamMessageReader(socket), new StreamMessageWriter(socket));
  socket.on('error', () => undefined); // surfaced as the connection closing
  const client = new AgentdClient(rpc, socket);
  if (options.onPermissionRequest) client.onRequest(PermissionRequest, options.onPermissionRequest);
  rpc.listen();
  try {
    await client.initialize({
      protocolVersion: PROTOCOL_VERSION,
      clientInfo: { name: options.clientName, ...(options.clientVersion ? { version: options.clientVersion } : {}) },
      capabilities: { ...options.capabilities, ...(options.onPermissionRequest ? { permissionRequests: true } : {}) },
    });
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}
