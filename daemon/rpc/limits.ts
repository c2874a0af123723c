/** The largest frame the daemon reads; a bigger one closes the connection (after an error). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Live events that may wait for one slow subscriber before it is dropped. */
export const SUBSCRIPTION_MAX_PENDING = 1024;

/** Events per session/event notification while catching up. */
export const SUBSCRIPTION_BATCH = 256;
