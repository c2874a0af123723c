import type { StoredEvent } from './session-log.js';

/** Sizes known from the stored JSON, so that no event is serialised twice to be measured. */
const known = new WeakMap<StoredEvent, number>();

/** An event parsed from `json`, remembered with its size. */
export function parsedEvent(json: string): StoredEvent {
  const event = JSON.parse(json) as StoredEvent;
  known.set(event, json.length);
  return event;
}

/** The size of an event as stored: the characters of its JSON (bytes, for the ASCII most events are). */
export function eventBytes(event: StoredEvent): number {
  let bytes = known.get(event);
  if (bytes === undefined) {
    bytes = JSON.stringify(event).length;
    known.set(event, bytes);
  }
  return bytes;
}

/** How many of `events` fit in `maxBytes`: always at least one, so a page never stalls on a big event. */
export function countWithin(events: readonly StoredEvent[], maxBytes: number): number {
  let total = 0;
  for (let i = 0; i < events.length; i++) {
    total += eventBytes(events[i]!);
    if (total > maxBytes && i > 0) return i;
  }
  return events.length;
}
