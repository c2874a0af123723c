import type { z } from 'zod';
import { AgentdError, type RequestDefinition } from '../../protocol/index.js';
import { connect, type AgentdClient, type ConnectOptions } from '../lib/index.js';

/** Requests that change nothing, and so may be sent again. */
const READS = new Set(['session/list', 'session/get', 'session/events']);

export interface LinkOptions {
  version: string;
  /** Handed to `connect`; tests and callers may pin the data dir. */
  layout?: ConnectOptions['layout'];
  /** Diagnostics (stderr: stdout carries MCP frames only). */
  log: (message: string) => void;
  /** Answers the daemon's permission questions (declares `permissionRequests`). */
  onPermissionRequest?: ConnectOptions['onPermissionRequest'];
}

/**
 * The MCP server's one connection to the daemon. It is made on first use (starting
 * the daemon when none runs, unless it was stopped with `agentd stop`: then calls fail
 * saying so until someone starts it) and, when the daemon goes away, made again on the
 * next call: an MCP host keeps its server process for its whole life, and a daemon
 * restart in between must not leave it broken.
 */
export class DaemonLink {
  private current: Promise<AgentdClient> | undefined;
  private live: AgentdClient | undefined;
  private closing = false;
  private readonly connectedListeners = new Set<(client: AgentdClient) => void>();
  private readonly lostListeners = new Set<() => void>();

  constructor(private readonly options: LinkOptions) {}

  /**
   * The connected client. `autostart: false` only reconnects to a daemon that runs:
   * background work (resource subscriptions) must not start a daemon someone stopped.
   */
  client(autostart = true): Promise<AgentdClient> {
    if (this.closing) return Promise.reject(new Error('agentd mcp is shutting down'));
    if (this.current) return this.current;
    const attempt = connect({
      clientName: 'agentd-mcp',
      clientVersion: this.options.version,
      autostart,
      explicit: false,
      ...(this.options.layout ? { layout: this.options.layout } : {}),
      ...(this.options.onPermissionRequest ? { onPermissionRequest: this.options.onPermissionRequest } : {}),
    });
    this.current = attempt;
    attempt.then(
      (client) => {
        // The host went away while this connection was being made.
        if (this.closing) return client.close();
        this.live = client;
        this.options.log('connected to the daemon');
        void client.closed.then(() => {
          if (this.current === attempt) this.current = undefined;
          if (this.live === client) this.live = undefined;
          if (this.closing) return;
          this.options.log('lost the daemon connection; reconnecting on the next call');
          for (const listener of this.lostListeners) listener();
        });
        for (const listener of this.connectedListeners) listener(client);
      },
      () => {
        if (this.current === attempt) this.current = undefined;
      },
    );
    return attempt;
  }

  /**
   * A request on the current connection. A read that fails because the connection
   * died under it (the daemon restarted, and its close was not yet seen) is made once
   * more on a new connection; anything that changes state is not, since it may have
   * taken effect.
   */
  async request<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    params: z.input<P>,
  ): Promise<z.output<R>> {
    const client = await this.client();
    try {
      return await client.request(def, params);
    } catch (error) {
      if (error instanceof AgentdError || !READS.has(def.method)) throw error;
      // A request that failed on a dying connection settles just before its close does.
      await Promise.race([client.closed, new Promise((r) => setTimeout(r, 100))]);
      if (this.live === client) throw error;
      return (await this.client()).request(def, params);
    }
  }

  /** Called with each new connection (the first and every reconnection). */
  onConnected(listener: (client: AgentdClient) => void): void {
    this.connectedListeners.add(listener);
  }

  /** Called when a connection closed without `close()`. */
  onLost(listener: () => void): void {
    this.lostListeners.add(listener);
  }

  close(): void {
    this.closing = true;
    this.live?.close();
    this.live = undefined;
    this.current = undefined;
  }
}
