/**
 * LevelDB key layout. Keys sort so that every read is a range read:
 *   e!<sessionId>!<seq, 12 digits>   an event (zero padding makes byte order = seq order)
 *   m!<sessionId>                    a session's metadata (ids are time-sortable: reverse = newest first)
 *   c!<sessionId>                    a session's checkpoint: "<seq> <state>" (see SessionLog.putCheckpoint)
 *   n!sessions                       how many sessions there are (kept with every create)
 * Session ids never contain '!' (checkSessionId), so no session's range overlaps another's.
 */

const SEQ_DIGITS = 12;
/** One past every digit: the exclusive end of a session's event range. */
const SEQ_END = '~';

export function eventKey(sessionId: string, seq: number): string {
  return `e!${sessionId}!${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

export function eventRangeEnd(sessionId: string): string {
  return `e!${sessionId}!${SEQ_END}`;
}

export function seqOfEventKey(key: string): number {
  return Number(key.slice(key.lastIndexOf('!') + 1));
}

export function metaKey(sessionId: string): string {
  return `m!${sessionId}`;
}

export const META_FIRST = 'm!';
/** '"' follows '!': the exclusive end of all meta keys. */
export const META_END = 'm"';

export function checkpointKey(sessionId: string): string {
  return `c!${sessionId}`;
}

export const SESSION_COUNT_KEY = 'n!sessions';
