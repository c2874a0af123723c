/**
 * What one client may hold of the daemon. Each limit ends in a clear error, a drop with
 * a cursor to resume from, or backpressure (the daemon stops reading the connection
 * until it drains): never in unbounded memory. Field sizes are in the protocol schemas.
 */

/** The largest frame (or WebSocket message) the daemon reads; a bigger one closes the connection. */
export { MAX_FRAME_BYTES } from '../../protocol/index.js';

export interface ConnectionLimits {
  /** Requests admitted and not yet answered; one more is refused with LimitExceeded. */
  maxRequestsInFlight: number;
  /** Frame bytes of those requests; past it, the next request waits for earlier ones. */
  maxInFlightBytes: number;
  /** Bytes waiting on the socket for the client to read; past it, the daemon stops reading. */
  maxBacklogBytes: number;
}

export const CONNECTION_LIMITS: ConnectionLimits = {
  maxRequestsInFlight: 64,
  maxInFlightBytes: 16 * 1024 * 1024,
  maxBacklogBytes: 8 * 1024 * 1024,
};

/** Subscriptions one connection may hold; one more is refused with LimitExceeded. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 64;

/** Live events that may wait for one slow subscriber, by count and by bytes, before it is dropped with its cursor. */
export const SUBSCRIPTION_MAX_PENDING = 1024;
export const SUBSCRIPTION_MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** Events per session/event notification while catching up, and the bytes such a batch may carry. */
export const SUBSCRIPTION_BATCH = 256;
export const SUBSCRIPTION_BATCH_BYTES = 512 * 1024;

/** The event bytes one session/events page carries at most; `next` says where to read on. */
export const READ_PAGE_BYTES = 512 * 1024;
