/**
 * The adapter's one connection to the agentd daemon: made on first use (starting the
 * daemon when none runs, unless it was stopped with `agentd stop`: the editor starting
 * its agent is not a person asking for the daemon), made again after it is lost, with
 * permission questions and text deltas routed to whoever the adapter says.
 */
import type { z } from 'zod';
import { connect, type AgentdClient } from '../lib/index.js';
import { SessionDeltaNotification, type PermissionDecision, type PermissionRequest } from '../../protocol/index.js';

export type PermissionQuestion = z.output<typeof PermissionRequest.params>;
export type Delta = z.output<typeof SessionDeltaNotification.params>;

export interface LinkHandlers {
  onPermission(question: PermissionQuestion): Promise<{ decision: PermissionDecision }>;
  onDelta(delta: Delta): void;
  /** The connection closed (daemon stopped or restarted); `client()` makes a new one. */
  onClosed(client: AgentdClient): void;
}

export class DaemonLink {
  private current: Promise<AgentdClient> | undefined;
  private closing = false;

  constructor(
    private readonly version: string,
    private readonly handlers: LinkHandlers,
  ) {}

  client(): Promise<AgentdClient> {
    if (this.closing) return Promise.reject(new Error('the ACP connection is closing'));
    if (this.current) return this.current;
    const attempt = connect({
      explicit: false,
      clientName: 'agentd-acp',
      clientVersion: this.version,
      onPermissionRequest: (question) => this.handlers.onPermission(question),
    }).then((client) => {
      client.onNotification(SessionDeltaNotification, (delta) => this.handlers.onDelta(delta));
      void client.closed.then(() => {
        if (this.current === attempt) this.current = undefined;
        if (!this.closing) this.handlers.onClosed(client);
      });
      return client;
    });
    attempt.catch(() => {
      if (this.current === attempt) this.current = undefined;
    });
    this.current = attempt;
    return attempt;
  }

  async close(): Promise<void> {
    this.closing = true;
    const current = this.current;
    this.current = undefined;
    const client = await current?.catch(() => undefined);
    client?.close();
  }
}
