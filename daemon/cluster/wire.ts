/**
 * Joins this daemon's services to the cluster bus: interrupts reach the daemon running the
 * turn, deltas reach subscribers everywhere, and permission questions are asked of the
 * controllers on every daemon, the first answer anywhere winning.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Harness } from '../harness/index.js';
import type { SessionLog } from '../log/session-log.js';
import { openQuestions, type PermissionBroker } from '../permissions.js';
import type { SubscriptionHub } from '../subscriptions.js';
import { FOLLOW_TTL_MS, type ClusterBus } from './bus.js';


export interface ClusterParts {
  log: SessionLog;
  harness: Harness;
  hub: SubscriptionHub;
  permissions: PermissionBroker;
}

/** How long a new subscription waits for its follow announcement to be sent, at most. */
const FOLLOW_WAIT_MS = 250;

/** How often a daemon repeats which sessions it has subscribers of (well inside FOLLOW_TTL_MS). */
const FOLLOW_REPEAT_MS = FOLLOW_TTL_MS / 3;

/** Returns a stop function (for the daemon's shutdown). */
export function wireCluster(bus: ClusterBus, parts: ClusterParts): () => void {
  const { log, harness, hub, permissions } = parts;
  // Deltas cross to another daemon only while someone there follows the session. The
  // subscription waits for the announcement, so the first deltas are not missed, but not
  // long: a slow database must not hold a subscriber up.
  hub.onFirstSubscriber = (sessionId) =>
    Promise.race([bus.follow([sessionId]), delay(FOLLOW_WAIT_MS, undefined, { ref: false })]);
  const repeat = setInterval(() => {
    const followed = hub.followed();
    if (followed.length > 0) void bus.follow(followed);
  }, FOLLOW_REPEAT_MS);
  repeat.unref();
  bus.on('interrupt', (m) => void harness.interrupt(m.sessionId, m.turnId));
  bus.on('release', (m) => void harness.release(m.sessionId));
  bus.on('delta', (m) => hub.broadcastDelta(m.sessionId, m.turnId, m.delta, m.index, m.text));
  bus.on('permission.ask', (m) => {
    openQuestions(log, m.sessionId).then(
      (questions) => questions.filter((q) => q.toolUseId === m.toolUseId).forEach((q) => permissions.askRemote(q)),
      () => undefined,
    );
  });
  bus.on('permission.answer', (m) => permissions.answerFromRemote(m.toolUseId, m.decision, m.by));
  bus.on('permission.closed', (m) => permissions.closeRemote(m.toolUseId));
  permissions.relay = {
    asked: (q) => bus.send({ kind: 'permission.ask', sessionId: q.sessionId, toolUseId: q.toolUseId }),
    closed: (q) => bus.send({ kind: 'permission.closed', sessionId: q.sessionId, toolUseId: q.toolUseId }),
    answered: (q, decision, by) => bus.send({ kind: 'permission.answer', sessionId: q.sessionId, toolUseId: q.toolUseId, decision, by }),
  };
  return () => clearInterval(repeat);
}
