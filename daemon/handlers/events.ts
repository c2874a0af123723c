import type { CancellationToken } from 'vscode-jsonrpc/node';
import {
  AgentdError,
  ErrorCode,
  type SessionEvents,
  type SessionSubscribe,
  type SessionUnsubscribe,
} from '../../protocol/index.js';
import { fromLogError } from '../errors.js';
import type { SessionLog } from '../log/session-log.js';
import type { Handler } from './context.js';
import { READ_PAGE_BYTES } from '../rpc/limits.js';

export const events: Handler<typeof SessionEvents> = async (params, { daemon, token }) => {
  const { sessionId, waitMs, ...range } = params;
  // Pages are cut by bytes as well as by count, so one answer never holds a whole long session.
  const read = () => daemon.log.read(sessionId, { ...range, maxBytes: READ_PAGE_BYTES }).catch((e) => Promise.reject(fromLogError(e, sessionId)));
  let page = await read();
  const from = range.from ?? 0;
  if (page.events.length === 0 && page.next === undefined && waitMs && from >= page.headSeq && (range.to ?? Infinity) > from) {
    await waitForEvent(daemon.log, sessionId, from, waitMs, token);
    page = await read();
  }
  return page;
};

/** Resolves when the session has an event at `from`, after `waitMs`, or on cancellation (-32800). */
async function waitForEvent(log: SessionLog, sessionId: string, from: number, waitMs: number, token: CancellationToken): Promise<void> {
  // A token cancelled before it was first read is the inert CancellationToken.Cancelled,
  // whose event never fires: check the flag, not only the event.
  if (token.isCancellationRequested) throw new AgentdError(ErrorCode.RequestCancelled, 'request cancelled');
  let wake!: () => void;
  const arrived = new Promise<void>((resolve) => (wake = resolve));
  const subscription = await log.subscribe(sessionId, from, () => wake(), { maxPending: 1, batchSize: 1 });
  const timer = setTimeout(wake, waitMs);
  const cancelled = token.onCancellationRequested(wake);
  try {
    await arrived;
  } finally {
    clearTimeout(timer);
    cancelled.dispose();
    subscription.close();
  }
  if (token.isCancellationRequested) throw new AgentdError(ErrorCode.RequestCancelled, 'request cancelled');
}

export const subscribe: Handler<typeof SessionSubscribe> = async ({ sessionId, from }, { daemon, peer }) => {
  await daemon.sessions.record(sessionId);
  return daemon.hub.open(peer, sessionId, from);
};

export const unsubscribe: Handler<typeof SessionUnsubscribe> = async ({ subscriptionId }, { daemon, peer }) => {
  if (!daemon.hub.close(peer, subscriptionId)) {
    throw new AgentdError(ErrorCode.SubscriptionNotFound, `this connection has no subscription ${subscriptionId}`, { subscriptionId });
  }
  return {};
};
