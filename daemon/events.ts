/**
 * The one way daemon code writes session events: as the protocol's known events, each
 * checked against its type's schema before the log sees it, so the log holds only what
 * readers can narrow. The log (daemon/log) stores envelopes and knows no event types.
 */
import { validEvent, type NewKnownEvent } from '../protocol/index.js';
import type { NewEvent, SessionLog, WriteOptions } from './log/session-log.js';

/** The event as the log's envelope, once its schema accepted it; a `ZodError` naming the field otherwise. */
export function checkedEvent(event: NewKnownEvent): NewEvent {
  validEvent(event);
  return { type: event.type, data: event.data };
}

/** Appends typed events (see SessionLog.append for `metaPatch` and `options`); nothing is written when one is invalid. */
export async function appendEvents(
  log: SessionLog,
  sessionId: string,
  events: readonly NewKnownEvent[],
  metaPatch?: Record<string, unknown>,
  options?: WriteOptions,
): Promise<number[]> {
  return log.append(sessionId, events.map(checkedEvent), metaPatch, options);
}
