/** The client library: one typed connection for every agentd client. */
export { AgentdClient, connect, type ConnectOptions, type SubscriptionHandlers } from './client.js';
export { clientLayout, dial, dialOnce, DialError, startDaemonDetached, type DialOptions } from './dial.js';
export { followSession, type FollowOptions } from './follow.js';
