import { Initialize, Shutdown } from './methods/lifecycle.js';
import {
  SessionArchive,
  SessionAttach,
  SessionCreate,
  SessionFork,
  SessionGet,
  SessionInterrupt,
  SessionList,
  SessionPrompt,
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

/** Every request a client may send the daemon, by method name. */
export const ClientRequests = {
  [Initialize.method]: Initialize,
  [Shutdown.method]: Shutdown,
  [SessionCreate.method]: SessionCreate,
  [SessionList.method]: SessionList,
  [SessionGet.method]: SessionGet,
  [SessionPrompt.method]: SessionPrompt,
  [SessionInterrupt.method]: SessionInterrupt,
  [SessionEvents.method]: SessionEvents,
  [SessionSubscribe.method]: SessionSubscribe,
  [SessionUnsubscribe.method]: SessionUnsubscribe,
  [SessionFork.method]: SessionFork,
  [SessionAttach.method]: SessionAttach,
  [SessionArchive.method]: SessionArchive,
  [VaultSet.method]: VaultSet,
  [VaultList.method]: VaultList,
  [VaultDelete.method]: VaultDelete,
  [DaemonStatus.method]: DaemonStatus,
  [DaemonStop.method]: DaemonStop,
  [PermissionAnswer.method]: PermissionAnswer,
} as const;
export type ClientRequests = typeof ClientRequests;
export type ClientMethod = keyof ClientRequests;

/** Messages the daemon sends a client. */
export const DaemonMessages = {
  [SessionEventNotification.method]: SessionEventNotification,
  [SessionDeltaNotification.method]: SessionDeltaNotification,
  [SubscriptionDroppedNotification.method]: SubscriptionDroppedNotification,
  [PermissionRequest.method]: PermissionRequest,
  [DaemonStoppingNotification.method]: DaemonStoppingNotification,
} as const;
