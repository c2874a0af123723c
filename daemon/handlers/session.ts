import {
  AgentdError,
  ErrorCode,
  type SessionArchive,
  type SessionAttach,
  type SessionCreate,
  type SessionFork,
  type SessionGet,
  type SessionInterrupt,
  type SessionList,
  type SessionPrompt,
} from '../../protocol/index.js';
import type { Peer } from '../rpc/peer.js';
import type { Handler } from './context.js';

function requireController(peer: Peer, sessionId: string, action: string): void {
  if (!peer.isController(sessionId)) {
    throw new AgentdError(
      ErrorCode.NotController,
      `this connection is an observer of ${sessionId} and may not ${action}; attach as controller to do so`,
      { sessionId },
    );
  }
}

export const create: Handler<typeof SessionCreate> = (params, { daemon }) => daemon.sessions.create(params);

export const list: Handler<typeof SessionList> = (params, { daemon }) => daemon.sessions.list(params);

export const get: Handler<typeof SessionGet> = ({ sessionId }, { daemon }) => daemon.sessions.info(sessionId);

export const prompt: Handler<typeof SessionPrompt> = ({ sessionId, content }, { daemon, peer }) => {
  requireController(peer, sessionId, 'prompt');
  return daemon.sessions.prompt(sessionId, content);
};

export const interrupt: Handler<typeof SessionInterrupt> = async ({ sessionId }, { daemon, peer }) => {
  requireController(peer, sessionId, 'interrupt');
  await daemon.sessions.record(sessionId);
  // No model turn runs in this daemon yet (the harness lands separately): nothing to stop.
  return { interrupted: false };
};

export const fork: Handler<typeof SessionFork> = ({ sessionId, at }, { daemon }) => daemon.sessions.fork(sessionId, at);

export const attach: Handler<typeof SessionAttach> = async ({ sessionId, role }, { daemon, peer }) => {
  await daemon.sessions.record(sessionId);
  peer.roles.set(sessionId, role);
  return { role };
};

export const archive: Handler<typeof SessionArchive> = async ({ sessionId }, { daemon, peer }) => {
  requireController(peer, sessionId, 'archive it');
  await daemon.sessions.archive(sessionId);
  return {};
};
