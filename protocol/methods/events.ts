import { z } from 'zod';
import { clientRequest, daemonNotification } from '../define.js';
import { Event } from '../events.js';
import { SessionId } from './session.js';
import { FieldLimits as L } from '../limits.js';

const Seq = z.number().int().nonnegative();

export const SessionEvents = clientRequest('session/events', {
  scope: 'global',
  description:
    'Reads events [from, to) by position, at most `limit`, optionally of some types. `next` is where to read on when the page was cut short.',
  params: z.object({
    sessionId: SessionId,
    from: Seq.optional(),
    to: Seq.optional(),
    limit: z.number().int().min(1).max(10000).optional(),
    types: z.array(z.string().min(1).max(L.nameChars)).min(1).max(L.eventTypes).optional(),
    /** When no event at `from` exists yet, wait up to this long for one (a long poll; cancellable). */
    waitMs: z.number().int().min(0).max(60000).optional(),
  }),
  result: z.object({ events: z.array(Event), headSeq: Seq, next: Seq.optional() }),
});

export const SessionSubscribe = clientRequest('session/subscribe', {
  scope: 'global',
  description:
    'Sends every event from `from` (default: the head) as session/event notifications: catch-up first, then live; no gap, no duplicate.',
  params: z.object({ sessionId: SessionId, from: Seq.optional() }),
  result: z.object({ subscriptionId: z.string(), headSeq: Seq }),
});

export const SessionUnsubscribe = clientRequest('session/unsubscribe', {
  scope: 'global',
  description: 'Ends a subscription of this connection.',
  params: z.object({ subscriptionId: z.string().max(L.nameChars) }),
  result: z.object({}),
});

export const SessionEventNotification = daemonNotification('session/event', {
  scope: 'session',
  description:
    'Durable events of a subscription, in order, as a batch of consecutive seqs (batches amortise framing during catch-up).',
  params: z.object({ subscriptionId: z.string(), sessionId: SessionId, events: z.array(Event).min(1) }),
});

export const SessionDeltaNotification = daemonNotification('session/delta', {
  scope: 'session',
  description: 'Ephemeral streaming text or tool-input fragments of the running turn; never stored.',
  params: z.object({
    sessionId: SessionId,
    turnId: z.string(),
    kind: z.enum(['text', 'tool_input']),
    index: z.number().int().nonnegative(),
    text: z.string(),
  }),
});

export const SubscriptionDroppedNotification = daemonNotification('session/subscriptionDropped', {
  scope: 'session',
  description:
    'The subscriber fell too far behind its bounded buffer; the subscription is gone. Resubscribe from `next`.',
  params: z.object({ subscriptionId: z.string(), sessionId: SessionId, next: Seq, reason: z.string() }),
});
