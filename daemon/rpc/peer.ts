import type { CancellationToken, MessageConnection } from 'vscode-jsonrpc/node';
import type { z } from 'zod';
import type {
  AttachRole,
  ClientCapabilities,
  NotificationDefinition,
  RequestDefinition,
} from '../../protocol/index.js';
import { OWNER, type Access } from '../access.js';

/** One client connection as the daemon's services see it. */
export class Peer {
  state: 'new' | 'ready' | 'shutdown' = 'new';
  closed = false;
  clientName = '';
  capabilities: ClientCapabilities = {};
  readonly roles = new Map<string, AttachRole>();
  readonly subscriptions = new Set<string>();
  /** Subscriptions being opened now, counted against the per-connection limit. */
  subscribing = 0;

  constructor(
    readonly id: number,
    private readonly rpc: MessageConnection,
    private readonly pendingBytes: () => number = () => 0,
    /** The owner on the local socket; a token's role and scope over the network. */
    readonly access: Access = OWNER,
  ) {}

  /** Resolves once the notification has been handed to the socket. */
  notify<M extends string, P extends z.ZodType>(def: NotificationDefinition<M, P>, params: z.input<P>): Promise<void> {
    if (this.closed) return Promise.resolve();
    // The generic definition is the contract; vscode-jsonrpc's overloads cannot follow it.
    return this.rpc.sendNotification(def.method, params);
  }

  request<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    params: z.input<P>,
    token?: CancellationToken,
  ): Promise<z.output<R>> {
    return this.rpc.sendRequest(def.method, params, token).then((raw: unknown) => def.result.parse(raw));
  }

  /** Bytes queued for this client and not yet taken by the socket: ephemeral deltas skip a congested one. */
  get backlog(): number {
    return this.pendingBytes();
  }

  /**
   * A controller of the session: it created, forked into, prompted or attached to it as
   * controller on this connection (protocol/methods/permission.ts). Only controllers are
   * asked the session's permission questions, and only they may answer them.
   */
  isController(sessionId: string): boolean {
    return this.roles.get(sessionId) === 'controller';
  }

  /** Attached as an observer: may read and follow, not prompt, interrupt or answer. */
  isObserver(sessionId: string): boolean {
    return this.roles.get(sessionId) === 'observer';
  }
}
