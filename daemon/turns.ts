/**
 * Edits to a session's turns that the log records as events and never rewrites:
 * session/steer (input joins the running turn) and session/rollback (turns leave the context).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { AgentdError, ErrorCode, type PromptContent } from '../protocol/index.js';
import { appendEvents } from './events.js';
import { fromLogError } from './errors.js';
import { contextTurns } from './harness/context.js';
import { SessionFold } from './harness/fold.js';
import { newTurnId } from './ids.js';
import { LogError, type SessionLog } from './log/session-log.js';
import { requireIdle, requireWritable, type SessionService } from './sessions.js';

/** Events read per page when folding a session for rollback. */
const PAGE = 5000;
/** Other writers may move the head between our look and our write (rollback): this many looks, then SessionBusy. */
const ATTEMPTS = 20;
/** Between those looks: long enough for a write under way to land. */
const CONFLICT_WAIT_MS = 5;

const isConflict = (error: unknown) => error instanceof LogError && error.kind === 'conflict';

function busy(sessionId: string, what: string): AgentdError {
  return new AgentdError(ErrorCode.SessionBusy, `session ${sessionId} kept changing while it was ${what}; try again`, { sessionId });
}

/**
 * Appends `content` to the running turn as a user.steer, or, with no turn running, as a
 * prompt of its own. Whether it joined is what the log says: the daemon folds a steer
 * into its turn only if that turn had not ended before it, so `steered` is false when the
 * turn's end landed between our look at the metadata and the append.
 */
export async function steer(
  log: SessionLog,
  sessions: SessionService,
  sessionId: string,
  content: PromptContent,
): Promise<{ turnId: string; seq: number; steered: boolean }> {
  // The head first: the metadata read after it is at least as new, so a turn it shows running had not ended before it.
  const head = await log.head(sessionId).catch((e) => Promise.reject(fromLogError(e, sessionId)));
  const record = await sessions.record(sessionId);
  requireWritable(record);
  const joins = (record.status === 'running' || record.status === 'waiting') && record.runningTurn ? record.runningTurn : undefined;
  if (!joins) return { ...(await sessions.prompt(sessionId, content)), steered: false };
  const turnId = newTurnId();
  const [seq] = await appendEvents(log, sessionId, [{ type: 'user.steer', data: { turnId, joins, content } }]).catch((e) =>
    Promise.reject(fromLogError(e, sessionId)),
  );
  return (await endedBetween(log, sessionId, joins, head, seq!)) ? { turnId, seq: seq!, steered: false } : { turnId: joins, seq: seq!, steered: true };
}

const TURN_ENDS = ['turn.completed', 'turn.interrupted', 'turn.failed'];

/** Whether turn `turnId` ended in [from, to). */
async function endedBetween(log: SessionLog, sessionId: string, turnId: string, from: number, to: number): Promise<boolean> {
  for (let next: number | undefined = from; next !== undefined && next < to; ) {
    const page = await log.read(sessionId, { from: next, to, types: TURN_ENDS });
    if (page.events.some((e) => e.data.turnId === turnId)) return true;
    next = page.next;
  }
  return false;
}

/**
 * Takes the last `turns` turns of the context out of it with a session.rolled_back event.
 * Only an idle session: the log is folded up to its head, and the event is written only
 * at that head.
 */
export async function rollback(log: SessionLog, sessions: SessionService, sessionId: string, turns: number): Promise<{ seq: number; turnIds: string[] }> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const record = await sessions.record(sessionId);
    requireWritable(record);
    requireIdle(record, 'rolled back');
    const fold = new SessionFold();
    for (let from = 0; ; ) {
      const page = await log.read(sessionId, { from, limit: PAGE }).catch((e) => Promise.reject(fromLogError(e, sessionId)));
      for (const event of page.events) fold.apply(event);
      if (page.next === undefined) break;
      from = page.next;
    }
    const done = contextTurns(fold.state).filter((t) => t.end);
    if (turns > done.length) {
      throw new AgentdError(ErrorCode.InvalidPosition, `session ${sessionId} has ${done.length} turns in its context (compacted ones are not counted); cannot roll back ${turns}`, {
        turnsInContext: done.length,
      });
    }
    const gone = done.slice(done.length - turns);
    const data = { turns, turnIds: gone.map((t) => t.turnId), fromSeq: gone[0]!.userSeq };
    try {
      const [seq] = await appendEvents(log, sessionId, [{ type: 'session.rolled_back', data }], undefined, { ifHead: fold.state.headSeq });
      return { seq: seq!, turnIds: data.turnIds };
    } catch (error) {
      if (!isConflict(error)) throw fromLogError(error, sessionId);
      // Another write is under way and not yet readable: looking again at once would find the log as it was.
      await delay(CONFLICT_WAIT_MS);
    }
  }
  throw busy(sessionId, 'rolled back');
}
