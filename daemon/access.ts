/**
 * What a connection may do. The local socket is the owner's: everything. A connection
 * over the network carries a token (protocol/methods/token.ts): its role and session
 * scope decide, method by method, before any handler runs.
 */
import { AgentdError, ErrorCode, type ClientMethod, type TokenRole } from '../protocol/index.js';

export type Access =
  | { kind: 'owner' }
  | {
      kind: 'token';
      /** The token (for a web login, the token it was made with): what revocation and the per-token limits go by. */
      tokenId: string;
      /** The web login's own id, when the connection came with the session cookie. */
      loginId?: string;
      name: string;
      role: TokenRole;
      /** null: every session. */
      sessions: ReadonlySet<string> | null;
      expiresAt: number | null;
    };

export type TokenAccess = Extract<Access, { kind: 'token' }>;

export const OWNER: Access = { kind: 'owner' };

/** A check of one method's params against a token; throws the refusal. */
type Rule = (access: TokenAccess, params: unknown, method: ClientMethod) => void;

function sessionIdOf(params: unknown): string | undefined {
  const id = (params as { sessionId?: unknown } | undefined)?.sessionId;
  return typeof id === 'string' ? id : undefined;
}

const forbid = (access: TokenAccess, method: string, why: string) =>
  new AgentdError(ErrorCode.TokenForbids, `${why}: ${method} is refused (token ${access.name})`, { method, role: access.role, scoped: access.sessions !== null });

/** Anyone with a token. */
const open: Rule = () => undefined;

/** Reading a session: it must be in the token's scope. Checked before the session is looked up, so a refusal says nothing of whether it exists. */
const read: Rule = (access, params) => {
  const sessionId = sessionIdOf(params);
  if (sessionId !== undefined && access.sessions && !access.sessions.has(sessionId)) {
    throw new AgentdError(ErrorCode.OutsideTokenScope, `session ${sessionId} is not among the sessions token ${access.name} may see`, { sessionId });
  }
};

/** Changing a session: a controller token, in scope. */
const control: Rule = (access, params, method) => {
  if (access.role !== 'controller') throw forbid(access, method, 'an observer token may read and follow sessions only');
  read(access, params, method);
};

/** What is not one session's: new sessions and the vault, for a controller token of every session. */
const daemonWide: Rule = (access, params, method) => {
  if (access.role !== 'controller') throw forbid(access, method, 'an observer token may read and follow sessions only');
  if (access.sessions) throw forbid(access, method, 'a token scoped to sessions may not create sessions or use the vault');
  read(access, params, method);
};

const localOnly: Rule = (access, _params, method) => {
  throw forbid(access, method, 'tokens and stopping the daemon are for its local socket only');
};

/** Attaching as controller is controlling; as observer, reading. */
const attach: Rule = (access, params, method) => ((params as { role?: string }).role === 'controller' ? control : read)(access, params, method);

/** Every method's rule for token connections: a new method without one does not compile. */
const RULES = {
  initialize: open,
  shutdown: open,
  // Filtered to the token's sessions by its handler.
  'session/list': open,
  'session/unsubscribe': open,
  'daemon/status': open,
  'session/get': read,
  'session/events': read,
  'session/subscribe': read,
  'session/attach': attach,
  'session/prompt': control,
  'session/steer': control,
  'session/interrupt': control,
  'session/rename': control,
  'session/setBudget': control,
  'session/setNetwork': control,
  'session/rollback': control,
  'session/archive': control,
  'session/delete': control,
  'permission/answer': control,
  'session/create': daemonWide,
  'session/fork': daemonWide,
  'vault/set': daemonWide,
  'vault/list': daemonWide,
  'vault/delete': daemonWide,
  'daemon/stop': localOnly,
  'token/create': localOnly,
  'token/list': localOnly,
  'token/revoke': localOnly,
} satisfies Record<ClientMethod, Rule>;

/** Throws TokenForbids or OutsideTokenScope when the connection may not make this request. */
export function checkAccess(access: Access, method: ClientMethod, params: unknown): void {
  if (access.kind === 'token') RULES[method](access, params, method);
}

/** Whether the connection may see this session at all (session/list, counts). */
export function maySee(access: Access, sessionId: string): boolean {
  return access.kind === 'owner' || access.sessions === null || access.sessions.has(sessionId);
}

/** How `initialize` describes the connection's access to the client. */
export function describeAccess(access: Access): { role: 'owner' | TokenRole; sessions?: string[]; tokenName?: string } {
  if (access.kind === 'owner') return { role: 'owner' };
  return { role: access.role, tokenName: access.name, ...(access.sessions ? { sessions: [...access.sessions] } : {}) };
}
