/** The client library: one typed connection, one link that keeps it, one follower, one fold (chat-view.ts reads it as a chat). */
export {
  AgentdClient,
  asResponseError,
  connect,
  notOurSession,
  type ConnectOptions,
  type PermissionHandler,
  type PermissionQuestion,
  type StoppingNotice,
  type SubscriptionHandlers,
} from './client.js';
export { clientLayout, DaemonStoppedError, dial, dialOnce, DialError, startDaemonDetached, stopMarker, stoppedError, type DialOptions } from './dial.js';
export { SessionFollower, singleConnection, type ClientSource, type FollowedConnection, type FollowerHooks } from './follower.js';
export { DaemonLink, socketConnector, type Connector, type LinkConnection, type LinkOptions, type LinkState } from './link.js';
export * from './transcript.js';
export { weakerIsolation } from './isolation.js';
