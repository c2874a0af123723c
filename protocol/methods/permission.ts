/**
 * Permission questions, and who may answer them.
 *
 * A connection is a **controller** of a session only when, on that connection, it
 * created the session (`session/create`, or `session/fork` for the new session),
 * attached to it with `session/attach {role: "controller"}`, or prompted it
 * (`session/prompt`). Nothing else makes it one: a connection that merely reads,
 * follows, interrupts or lists sessions controls none of them, and `session/attach
 * {role: "observer"}` ends control (an observer may not prompt, interrupt or answer).
 * Control belongs to the connection: it ends when the connection closes, and a client
 * that reconnects attaches again.
 *
 * `permission/request` goes only to controllers of the question's session that declared
 * `capabilities.permissionRequests` (for a sub-agent's question, also the controllers of
 * its parent session), on whichever daemon they are connected to (with a
 * shared PostgreSQL log, a question raised on one daemon reaches controllers on every
 * daemon). The first answer, by reply or by `permission/answer`, wins; the other
 * requests are cancelled. Answering a question of a session the connection does not
 * control is refused with `NotController` (-33008).
 */
import { z } from 'zod';
import { clientRequest, daemonRequest } from '../define.js';
import { PermissionDecision } from '../events.js';
import { SessionId } from './session.js';

export const PermissionQuestion = z.object({
  /** The session that asks: clients show it with every question. */
  sessionId: SessionId,
  /** That session's title, or null when it has none (show the id then). */
  sessionTitle: z.string().nullable(),
  /**
   * Set when the asking session is a sub-agent: the session that started it. The parent's
   * controllers are asked (and may answer) too; show the question as the sub-agent's.
   */
  parentSessionId: SessionId.optional(),
  toolUseId: z.string(),
  tool: z.string(),
  input: z.record(z.string(), z.unknown()),
  /** "network": the egress proxy asks whether the session may reach `input.host`:`input.port` (absent: a tool call). */
  kind: z.enum(['tool', 'network']).optional(),
});
export type PermissionQuestion = z.infer<typeof PermissionQuestion>;

export const PermissionRequest = daemonRequest('permission/request', {
  scope: 'session',
  description:
    'Asks a controller of the session (one that declared capabilities.permissionRequests) whether a tool call may run. The first answer wins; the others are cancelled.',
  params: PermissionQuestion,
  result: z.object({ decision: PermissionDecision }),
});

export const PermissionAnswer = clientRequest('permission/answer', {
  scope: 'global',
  description:
    "Answers an open question of a session this connection controls, by its toolUseId, as a reply to permission/request would. NotController for another session's question; QuestionNotOpen when it was answered or withdrawn.",
  params: z.object({ sessionId: SessionId, toolUseId: z.string().min(1).max(200), decision: PermissionDecision }),
  result: z.object({}),
});
