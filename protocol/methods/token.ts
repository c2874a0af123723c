/**
 * Access tokens for the network listener (`agentd daemon --listen`). The local socket
 * is the owner's and needs none; a connection over the network carries a token (or the
 * web client's session cookie, exchanged for one) and gets only what its token allows:
 *
 * - **role** `controller`: what the owner may do with sessions (create, prompt,
 *   interrupt, answer permissions, archive, fork) and the vault; `observer`: read and
 *   follow only (list, get, events, subscribe, attach as observer). Anything else is
 *   refused with `TokenForbids`.
 * - **sessions**: a token scoped to sessions sees those only (`session/list` included);
 *   naming another is refused with `OutsideTokenScope` whether it exists or not. A
 *   scoped token may not create or fork sessions, nor touch the vault (`TokenForbids`).
 * - Tokens are made, listed and revoked on the local socket only (`agentd token`), as
 *   is `daemon/stop`.
 *
 * The daemon stores a token's SHA-256 only; the token itself is in `token/create`'s
 * answer and nowhere else. On a shared PostgreSQL log tokens live in the database, so
 * every daemon accepts them.
 */
import { z } from 'zod';
import { clientRequest } from '../define.js';
import { FieldLimits as L } from '../limits.js';
import { SessionId } from './session.js';

export const TokenRole = z.enum(['observer', 'controller']);
export type TokenRole = z.infer<typeof TokenRole>;

export const TokenId = z.string().regex(/^tok_[0-9a-f]{16}$/, 'a token id looks like tok_ and 16 hex digits');

/** What `agentd token list` shows of a token: never the token. */
export const TokenInfo = z.object({
  id: TokenId,
  name: z.string(),
  role: TokenRole,
  /** The sessions it is scoped to; null: every session. */
  sessions: z.array(SessionId).nullable(),
  createdAt: z.number(),
  /** null: it does not expire. */
  expiresAt: z.number().nullable(),
  /** Web logins (session cookies) made with it that are still valid. */
  webLogins: z.number().int().nonnegative(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;

/** The longest a token may live: a year. */
export const MAX_TOKEN_LIFETIME_MS = 366 * 24 * 3600 * 1000;

export const TokenCreate = clientRequest('token/create', {
  scope: 'global',
  description:
    'Makes an access token for the network listener and answers it once; the daemon keeps only its hash. Local socket only (TokenForbids over the network).',
  params: z.object({
    role: TokenRole,
    sessions: z.array(SessionId).min(1).max(L.listItems).optional(),
    expiresInMs: z.number().int().min(1000).max(MAX_TOKEN_LIFETIME_MS).optional(),
    name: z.string().min(1).max(L.nameChars).optional(),
  }),
  result: z.object({
    /** The token: shown once, never stored, never logged. */
    token: z.string(),
    info: TokenInfo,
  }),
});

export const TokenList = clientRequest('token/list', {
  scope: 'global',
  description: 'Lists the tokens that are valid now (never the tokens themselves). Local socket only.',
  params: z.object({}).optional(),
  result: z.object({ tokens: z.array(TokenInfo) }),
});

export const TokenRevoke = clientRequest('token/revoke', {
  scope: 'global',
  description:
    'Revokes a token and the web logins made with it; connections using them are closed, on every daemon sharing the log. TokenNotFound when no valid token has this id. Local socket only.',
  params: z.object({ id: TokenId }),
  result: z.object({}),
});
