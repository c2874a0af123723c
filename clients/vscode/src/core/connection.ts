import type { z } from 'zod';
import { DaemonLink, type LinkState, type PermissionHandler } from '../../../lib/index.js';
import type { RequestDefinition } from '../../../../protocol/index.js';
import { AgentdNotFoundError, openBridge, type Bridge, type BridgeCommand } from './bridge.js';

export type ConnectionState = LinkState;

export interface ConnectionOptions {
  bridge: BridgeCommand;
  clientName: string;
  clientVersion?: string;
  /** Asked the questions of the sessions this extension controls. */
  onPermissionRequest?: PermissionHandler;
  /**
   * Waits before reconnect attempt `attempt` (1, 2, ...). Default: the link's backoff;
   * tests pass a gate to decide when the reconnect happens.
   */
  waitBeforeReconnect?: (attempt: number, signal: AbortSignal) => Promise<void>;
}

/** Whether waiting cannot help: the `agentd` executable is missing (the user must install it or fix the setting). */
export function agentdNotFound(state: ConnectionState): boolean {
  return state.kind === 'failed' && state.error instanceof AgentdNotFoundError;
}

/**
 * The extension's one link to the daemon, through `agentd stdio`: the shared DaemonLink
 * (reconnect, resume followers, control taken up again, a daemon stopped on purpose
 * waited for) whose connections are bridge processes. Each reconnection starts a new
 * bridge; `agentd stdio` starts a daemon that is not running, one stopped on purpose
 * only when the user asked (`startDaemon`).
 */
export class AgentdConnection extends DaemonLink {
  private readonly bridges: { live?: Bridge };

  constructor(options: ConnectionOptions) {
    const bridges: { live?: Bridge } = {};
    super({
      clientName: options.clientName,
      keepConnected: true,
      hopeless: (error) => error instanceof AgentdNotFoundError,
      ...(options.onPermissionRequest ? { onPermissionRequest: options.onPermissionRequest } : {}),
      ...(options.waitBeforeReconnect ? { waitBeforeReconnect: options.waitBeforeReconnect } : {}),
      connector: async ({ explicit, onPermissionRequest }) => {
        const command = explicit ? { ...options.bridge, args: [...options.bridge.args, '--start'] } : options.bridge;
        const bridge = await openBridge(command, {
          clientName: options.clientName,
          ...(options.clientVersion ? { clientVersion: options.clientVersion } : {}),
          ...(onPermissionRequest ? { onPermissionRequest } : {}),
        });
        bridges.live = bridge;
        return { client: bridge.client, closed: bridge.closed, close: () => bridge.dispose() };
      },
    });
    this.bridges = bridges;
  }

  /** The bridge's process id while connected (for diagnostics, and for tests that kill it). */
  get bridgePid(): number | undefined {
    return this.current ? this.bridges.live?.child.pid : undefined;
  }

  /** Sends a request once connected, waiting up to `waitMs` for a connection; fails if it drops before the answer. */
  override request<M extends string, P extends z.ZodType, R extends z.ZodType>(
    def: RequestDefinition<M, P, R>,
    params: z.input<P>,
    waitMs = 15_000,
  ): Promise<z.output<R>> {
    return super.request(def, params, waitMs);
  }

  /** Makes this extension a controller of the session (a chat opened on it): it is asked its questions. */
  control(sessionId: string): Promise<void> {
    return this.attach(sessionId, 'controller');
  }

  dispose(): Promise<void> {
    return this.close();
  }
}
