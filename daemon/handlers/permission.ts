import type { PermissionAnswer } from '../../protocol/index.js';
import { openQuestions } from '../permissions.js';
import type { Handler } from './context.js';

export const answer: Handler<typeof PermissionAnswer> = async ({ sessionId, toolUseId, decision }, { daemon, peer }) => {
  // With other daemons, a question asked on another one may not have reached this one yet: it is in the log.
  if (daemon.cluster && peer.isController(sessionId) && !daemon.permissions.hasOpen(sessionId)) {
    for (const question of await openQuestions(daemon.log, sessionId)) daemon.permissions.askRemote(question);
  }
  daemon.permissions.answer(peer, sessionId, toolUseId, decision);
  return {};
};
