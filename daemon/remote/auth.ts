/**
 * Who is at the other end of an HTTP request or WebSocket upgrade: the token in
 * `Authorization: Bearer`, or the web client's session cookie; and whether the page
 * that made a browser send it may (its Origin).
 */
import type { IncomingMessage } from 'node:http';
import { ErrorCode } from '../../protocol/index.js';
import type { TokenAccess } from '../access.js';
import type { TokenService } from '../tokens.js';

/** Refused before any JSON-RPC: an HTTP status and a stable code, in a JSON body. */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly data?: unknown,
    /** For daemon.log only: what the client is not told (it may not even have a valid token). */
    readonly detail?: string,
  ) {
    super(message);
  }
}

export interface ListenerIdentity {
  /** `https` or `http`. */
  readonly scheme: string;
  port: number;
  /** Origins besides the listener's own whose pages may log in and connect. */
  origins: ReadonlySet<string>;
}

/** The session cookie's name: per port, since cookies do not tell ports apart; `__Host-` on https pins it to this host. */
export function cookieName(identity: ListenerIdentity): string {
  return `${identity.scheme === 'https' ? '__Host-' : ''}agentd_login_${identity.port}`;
}

export function loginCookie(identity: ListenerIdentity, value: string, maxAgeMs: number): string {
  const secure = identity.scheme === 'https' ? '; Secure' : '';
  return `${cookieName(identity)}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}${secure}`;
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Refuses a request a page of another site made the browser send (cross-site WebSocket
 * hijacking, login CSRF). A request without Origin is not a browser's: it passes here
 * and must carry a bearer token (a cookie alone is not accepted without an Origin).
 */
export function checkOrigin(req: IncomingMessage, identity: ListenerIdentity): string | undefined {
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  const own = `${identity.scheme}://${req.headers.host ?? ''}`.toLowerCase();
  if (origin.toLowerCase() === own || identity.origins.has(origin.toLowerCase())) return origin;
  throw new HttpRefusal(403, ErrorCode.OriginRefused, `a page from ${origin.slice(0, 200)} may not use this daemon (only ${own} and the origins in config.json's remote.origins may)`);
}

/**
 * The token store is unreachable (a database that is down): not the client's fault, and
 * none of its business where the database is; the detail goes to daemon.log.
 */
export function unavailable(error: unknown): HttpRefusal {
  return new HttpRefusal(503, ErrorCode.StorageFailure, 'cannot check the token now: the session log does not answer; try again', undefined, error instanceof Error ? error.message : String(error));
}

const unauthenticated = (why: string) => new HttpRefusal(401, ErrorCode.Unauthenticated, why);

/** The bearer token of the Authorization header, if there is one. */
function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer +(\S+)$/i.exec(header);
  if (!m) throw unauthenticated('the Authorization header must be "Bearer <token>"');
  return m[1];
}

/** What the request may do, from its bearer token or its session cookie; 401 when neither is valid. */
export async function authenticate(req: IncomingMessage, identity: ListenerIdentity, tokens: TokenService): Promise<TokenAccess> {
  const origin = checkOrigin(req, identity);
  const token = bearer(req);
  const cookie = cookieOf(req, cookieName(identity));
  let access: TokenAccess | undefined;
  try {
    if (token !== undefined) access = await tokens.verifyToken(token);
    else if (cookie !== undefined && origin !== undefined) access = await tokens.verifyLogin(cookie);
  } catch (error) {
    throw unavailable(error);
  }
  if (access) return access;
  if (token === undefined && cookie === undefined) throw unauthenticated('no token: send "Authorization: Bearer <token>" (agentd token create makes one), or log in at / first');
  if (token === undefined && origin === undefined) throw unauthenticated('the session cookie is accepted from a browser page only; send "Authorization: Bearer <token>"');
  throw unauthenticated(token !== undefined ? 'the token is not valid: unknown, revoked or expired' : 'the login has ended (logged out, expired, or its token was revoked); log in again');
}

/** The login cookie of a request, for logging out. */
export function loginOf(req: IncomingMessage, identity: ListenerIdentity): string | undefined {
  return cookieOf(req, cookieName(identity));
}
