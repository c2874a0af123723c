import {
  AgentdError,
  ErrorCode,
  type SessionArchive,
  type SessionAttach,
  type SessionCreate,
  type SessionDelete,
  type SessionFork,
  type SessionGet,
  type SessionInterrupt,
  type SessionList,
  type SessionPrompt,
  type SessionRename,
  type SessionSetBudget,
  type SessionSetNetwork,
  type SessionRollback,
  type SessionSteer,
} from '../../protocol/index.js';
import * as turns from '../turns.js';
import type { ParamsOf } from '../../protocol/index.js';
import type { Peer } from '../rpc/peer.js';
import type { Daemon, Handler } from './context.js';
import { openQuestions } from '../permissions.js';
import { requireIdle } from '../sessions.js';
import { maySee } from '../access.js';

function refuseObserver(peer: Peer, sessionId: string, action: string): void {
  if (peer.isObserver(sessionId)) {
    throw new AgentdError(
      ErrorCode.NotController,
      `this connection is an observer of ${sessionId} and may not ${action}; attach as controller to do so`,
      { sessionId },
    );
  }
}

/**
 * Makes the connection a controller of the session (it created, prompted or attached to
 * it) and asks it the session's open questions. With other daemons, a question asked
 * there before this daemon heard of it is found in the log. Resolves once offered.
 */
async function takeControl(daemon: Daemon, peer: Peer, sessionId: string): Promise<void> {
  peer.roles.set(sessionId, 'controller');
  if (daemon.cluster && !daemon.permissions.hasOpen(sessionId)) {
    for (const question of await openQuestions(daemon.log, sessionId)) daemon.permissions.askRemote(question);
  }
  // After the reply that made it a controller is on its way.
  setImmediate(() => daemon.permissions.offer(peer, sessionId));
}

/** Credentials a session names must exist, and repos need a git binding: fail at create, not mid-turn. */
async function checkCredentials(params: ParamsOf<typeof SessionCreate>, vault: Daemon['vault']): Promise<void> {
  const bindings = new Map((await vault.list()).map((e) => [e.name, e.binding]));
  const bad = (path: string, message: string) =>
    new AgentdError(ErrorCode.InvalidParams, `invalid params for session/create: ${path}: ${message}`, { issues: [{ path, message }] });
  for (const [i, name] of (params.credentials ?? []).entries()) {
    if (!bindings.has(name)) throw bad(`credentials.${i}`, `no credential named ${name} in the vault`);
  }
  for (const [i, repo] of (params.repos ?? []).entries()) {
    const binding = bindings.get(repo.credential);
    if (!params.credentials?.includes(repo.credential)) throw bad(`repos.${i}.credential`, `${repo.credential} must also be listed in credentials`);
    if (binding?.kind !== 'git') throw bad(`repos.${i}.credential`, `${repo.credential} is not bound to a git remote`);
    if (binding.url.replace(/\/+$/, '') !== repo.url.replace(/\/+$/, '')) throw bad(`repos.${i}.url`, `${repo.credential} is bound to ${binding.url}, not ${repo.url}`);
    if (repo.path.startsWith('/') || repo.path.split('/').includes('..')) throw bad(`repos.${i}.path`, 'must be a relative path inside the workspace');
  }
  for (const [i, server] of (params.mcpServers ?? []).entries()) {
    if ('type' in server && server.credential && !bindings.has(server.credential)) throw bad(`mcpServers.${i}.credential`, `no credential named ${server.credential} in the vault`);
  }
}

export const create: Handler<typeof SessionCreate> = async (params, { daemon, peer }) => {
  await checkCredentials(params, daemon.vault);
  const created = await daemon.sessions.create(params);
  peer.roles.set(created.sessionId, 'controller');
  // Its runner (fold, tools, request scaffolding) is built while the client sends the first prompt.
  daemon.harness.prepareNew(created.sessionId);
  if (params.sandbox?.eager) {
    daemon.harness.provisionEagerly(created.sessionId).catch((error: unknown) =>
      daemon.logger.log('warn', 'eager sandbox provisioning failed', { sessionId: created.sessionId, error: String(error) }),
    );
  }
  return created;
};

export const list: Handler<typeof SessionList> = (params, { daemon, peer }) =>
  daemon.sessions.list({ ...params, visible: (sessionId) => maySee(peer.access, sessionId) });

export const get: Handler<typeof SessionGet> = ({ sessionId }, { daemon }) => daemon.sessions.info(sessionId);

export const prompt: Handler<typeof SessionPrompt> = async ({ sessionId, content }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'prompt');
  daemon.harness.prepare(sessionId);
  // The runner may start the model call while the message is made durable; the answer still waits for it.
  const appended = await daemon.sessions.prompt(sessionId, content, (input) => daemon.harness.speculate(sessionId, input));
  afterInput(daemon, peer, sessionId);
  return appended;
};

/** The connection that gave input controls the session, and its runner looks at the log again. */
function afterInput(daemon: Daemon, peer: Peer, sessionId: string): void {
  // A controller from now on: before the turn can ask anything.
  void takeControl(daemon, peer, sessionId).catch((error: unknown) => daemon.logger.log('warn', 'reading open questions failed', { sessionId, error: String(error) }));
  // Prompts queue in the log in order; the session's runner takes them one turn at a time.
  void daemon.harness.kick(sessionId).catch((error: unknown) => daemon.logger.log('error', 'harness kick failed', { sessionId, error: String(error) }));
}

export const steer: Handler<typeof SessionSteer> = async ({ sessionId, content }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'steer it');
  await daemon.harness.writesLanded(sessionId);
  const appended = await turns.steer(daemon.log, daemon.sessions, sessionId, content);
  // A steered turn's runner reads the input before its next model call; the kick matters when it became a turn of its own.
  afterInput(daemon, peer, sessionId);
  return appended;
};

export const rename: Handler<typeof SessionRename> = async ({ sessionId, title }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'rename it');
  await daemon.sessions.rename(sessionId, title);
  return {};
};

export const setBudget: Handler<typeof SessionSetBudget> = async ({ sessionId, budget }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'change its budget');
  await daemon.sessions.setBudget(sessionId, budget);
  return {};
};

export const setNetwork: Handler<typeof SessionSetNetwork> = async ({ sessionId, network }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'change its network policy');
  return { network: await daemon.sessions.setNetwork(sessionId, network) };
};

export const rollback: Handler<typeof SessionRollback> = async ({ sessionId, turns: count }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'roll it back');
  return turns.rollback(daemon.log, daemon.sessions, sessionId, count);
};

export const remove: Handler<typeof SessionDelete> = async ({ sessionId }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'delete it');
  const record = await daemon.sessions.record(sessionId);
  // Its sub-agents go with it (they are part of its work), all or none: every one must be idle.
  const children = (await Promise.all((record.children ?? []).map((id) => daemon.sessions.find(id)))).filter((r) => r !== undefined);
  for (const r of [record, ...children]) requireIdle(r, 'deleted');
  const deleted: string[] = [];
  for (const { sessionId: id } of [...children, record]) {
    // An idle runner (its sandbox, its proxy) goes first, here and wherever else it waits.
    await daemon.harness.release(id);
    daemon.cluster?.send({ kind: 'release', sessionId: id });
    await daemon.sessions.delete(id);
    deleted.push(id);
  }
  daemon.logger.log('info', 'session deleted', { sessionId, deleted });
  return { deleted };
};

/** Stops the session's running turn wherever it runs: here, or on the daemon holding its lease. */
async function interruptAnywhere(daemon: Daemon, sessionId: string): Promise<boolean> {
  const record = await daemon.sessions.record(sessionId);
  if (daemon.harness.interrupt(sessionId)) return true;
  if (!daemon.cluster) return false;
  daemon.cluster.send({ kind: 'interrupt', sessionId });
  return record.status === 'running' || record.status === 'waiting';
}

export const interrupt: Handler<typeof SessionInterrupt> = async ({ sessionId }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'interrupt');
  return { interrupted: await interruptAnywhere(daemon, sessionId) };
};

export const fork: Handler<typeof SessionFork> = async ({ sessionId, at }, { daemon, peer }) => {
  const forked = await daemon.sessions.fork(sessionId, at);
  peer.roles.set(forked.sessionId, 'controller');
  return forked;
};

export const attach: Handler<typeof SessionAttach> = async ({ sessionId, role }, { daemon, peer }) => {
  await daemon.sessions.record(sessionId);
  if (role === 'controller') await takeControl(daemon, peer, sessionId);
  else peer.roles.set(sessionId, role);
  return { role };
};

export const archive: Handler<typeof SessionArchive> = async ({ sessionId }, { daemon, peer }) => {
  refuseObserver(peer, sessionId, 'archive it');
  await interruptAnywhere(daemon, sessionId);
  // The sandbox goes now, with every process still running in it: here, or where the session runs.
  await daemon.harness.release(sessionId);
  daemon.cluster?.send({ kind: 'release', sessionId });
  await daemon.sessions.archive(sessionId);
  return {};
};
