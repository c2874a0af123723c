import type { CancellationToken } from 'vscode-jsonrpc/node';
import type { ClientMethod, ClientRequests, ParamsOf, ResultOf } from '../../protocol/index.js';
import type { LatencyWindow } from '../latency.js';
import type { Logger } from '../logger.js';
import type { SessionLog } from '../log/session-log.js';
import type { DataPaths } from '../paths.js';
import type { Peer } from '../rpc/peer.js';
import type { SessionService } from '../sessions.js';
import type { SubscriptionHub } from '../subscriptions.js';
import type { Vault } from '../vault/vault.js';
import type { Harness } from '../harness/index.js';
import type { PermissionBroker } from '../permissions.js';
import type { ClusterBus } from '../cluster/bus.js';
import type { TokenService } from '../tokens.js';
import type { PoolStatus } from '../../sandbox/types.js';

/** The daemon's services, as handlers see them. */
export interface Daemon {
  /** Unique per daemon process: names it in leases and in harness.woke. */
  readonly id: string;
  readonly store: { backend: 'leveldb' | 'postgres'; location: string };
  readonly version: string;
  readonly startedAt: number;
  readonly paths: DataPaths;
  readonly log: SessionLog;
  readonly sessions: SessionService;
  readonly hub: SubscriptionHub;
  readonly vault: Vault;
  readonly harness: Harness;
  readonly permissions: PermissionBroker;
  /** Access tokens for the network listener. */
  readonly tokens: TokenService;
  readonly logger: Logger;
  readonly appendLatency: LatencyWindow;
  readonly peers: ReadonlySet<Peer>;
  /** Other daemons sharing the sessions, when there are any. */
  readonly cluster?: ClusterBus;
  /** Where the harness finds the Messages-API key (never the key). */
  modelApiKey(): Promise<'environment' | 'vault' | 'missing'>;
  /** The warm sandbox pool's state, when the daemon keeps one. */
  sandboxPool(): PoolStatus | undefined;
  /** Begins a graceful stop on purpose once the current reply is on its way (see daemon/stop). */
  requestStop(reason: string, drainMs: number): void;
}

export interface RequestContext {
  daemon: Daemon;
  peer: Peer;
  token: CancellationToken;
}

export type Handler<D> = (params: ParamsOf<D>, ctx: RequestContext) => Promise<ResultOf<D>>;

/** One handler per client request: a method without one does not compile. */
export type HandlerTable = { [M in ClientMethod]: Handler<ClientRequests[M]> };
