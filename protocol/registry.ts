import { Initialize, Shutdown } from './methods/lifecycle.js';
import {
  SessionArchive,
  SessionAttach,
  SessionCreate,
  SessionDelete,
  SessionFork,
  SessionGet,
  SessionInterrupt,
  SessionList,
  SessionPrompt,
  SessionRename,
  SessionRollback,
  SessionSetBudget,
  SessionSetNetwork,
  SessionSteer,
} from './methods/session.js';
import {
  SessionDeltaNotification,
  SessionEventNotification,
  SessionEvents,
  SessionSubscribe,
  SessionUnsubscribe,
  SubscriptionDroppedNotification,
} from './methods/events.js';
import { VaultDelete, VaultList, VaultSet } from './methods/vault.js';
import { DaemonStatus, DaemonStop, DaemonStoppingNotification } from './methods/daemon.js';
import { PermissionAnswer, PermissionRequest } from './methods/permission.js';
import { TokenCreate, TokenList, TokenRevoke } from './methods/token.js';

/** Definitions keyed by their method name. */
function byMethod<const D extends readonly { method: string }[]>(defs: D): { readonly [K in D[number] as K['method']]: K } {
  return Object.fromEntries(defs.map((def) => [def.method, def])) as { readonly [K in D[number] as K['method']]: K };
}

/** Every request a client may send the daemon, by method name. */
export const ClientRequests = byMethod([
  Initialize,
  Shutdown,
  SessionCreate,
  SessionList,
  SessionGet,
  SessionPrompt,
  SessionSteer,
  SessionInterrupt,
  SessionEvents,
  SessionSubscribe,
  SessionUnsubscribe,
  SessionFork,
  SessionAttach,
  SessionArchive,
  SessionRename,
  SessionRollback,
  SessionSetBudget,
  SessionSetNetwork,
  SessionDelete,
  VaultSet,
  VaultList,
  VaultDelete,
  DaemonStatus,
  DaemonStop,
  PermissionAnswer,
  TokenCreate,
  TokenList,
  TokenRevoke,
]);
export type ClientRequests = typeof ClientRequests;
export type ClientMethod = keyof ClientRequests;

/** Messages the daemon sends a client. */
export const DaemonMessages = byMethod([SessionEventNotification, SessionDeltaNotification, SubscriptionDroppedNotification, PermissionRequest, DaemonStoppingNotification]);
