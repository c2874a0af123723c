/** The client library: one typed connection for every agentd client. */
export { AgentdClient, asResponseError, connect, notOurSession, type ConnectOptions, type StoppingNotice, type SubscriptionHandlers } from './client.js';
export { clientLayout, DaemonStoppedError, dial, dialOnce, DialError, startDaemonDetached, stopMarker, type DialOptions } from './dial.js';
export { followSession, type FollowOptions } from './follow.js';
export { weakerIsolation } from './isolation.js';
