/**
 * Access tokens for the network listener, over the log's TokenStore (so that every
 * daemon sharing a PostgreSQL log accepts the same ones).
 *
 * A token is 32 random bytes (`agt_` + base64url); a web login's session cookie is made
 * the same way (`agw_`). Only SHA-256 of each is stored: for a secret with 256 bits of
 * entropy a fast hash is enough (no one can search that space, so a slow password hash
 * such as scrypt would add nothing but CPU per connection, which is itself a lever for a
 * flood). The record's id is the hash's first 16 hex digits: a lookup is one key read,
 * and the full hash is then compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AgentdError, ErrorCode, type TokenInfo, type TokenRole } from '../protocol/index.js';
import type { StoredToken, TokenStore } from './log/session-log.js';
import type { TokenAccess } from './access.js';

/** How long a web login lasts at most (less when its token expires sooner). */
export const WEB_LOGIN_MS = 12 * 3600 * 1000;

const KINDS = { agt: 'tok', agw: 'web' } as const;
type SecretKind = keyof typeof KINDS;
const SECRET = /^(agt|agw)_[A-Za-z0-9_-]{43}$/;

function newSecret(kind: SecretKind): string {
  return `${kind}_${randomBytes(32).toString('base64url')}`;
}

function digest(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The record id a secret is stored under; undefined for anything that is not one of ours. */
function idOf(secret: string, kind: SecretKind): { id: string; hash: string } | undefined {
  const match = SECRET.exec(secret);
  if (!match || match[1] !== kind) return undefined;
  const hash = digest(secret);
  return { id: `${KINDS[kind]}_${hash.slice(0, 16)}`, hash };
}

const expired = (record: StoredToken, now: number) => record.expiresAt !== null && record.expiresAt <= now;

export interface NewToken {
  role: TokenRole;
  sessions?: string[];
  expiresInMs?: number;
  name?: string;
}

export class TokenService {
  private readonly revokedListeners = new Set<(ids: readonly string[]) => void>();

  constructor(
    private readonly store: TokenStore,
    /** Tells the other daemons sharing the log of ids revoked here (the cluster bus). */
    private readonly broadcast: (ids: readonly string[]) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Makes a token; the answer is the only place the token ever is. */
  async create(spec: NewToken): Promise<{ token: string; info: TokenInfo }> {
    const token = newSecret('agt');
    const { id, hash } = idOf(token, 'agt')!;
    const createdAt = this.now();
    const record: StoredToken = {
      id,
      hash,
      name: spec.name ?? id,
      role: spec.role,
      sessions: spec.sessions ? [...new Set(spec.sessions)] : null,
      createdAt,
      expiresAt: spec.expiresInMs === undefined ? null : createdAt + spec.expiresInMs,
      parent: null,
    };
    await this.store.put(record);
    return { token, info: info(record, 0) };
  }

  /** Valid tokens with their live web logins; expired records are removed on the way. */
  async list(): Promise<TokenInfo[]> {
    const now = this.now();
    const records = await this.store.list();
    const live = new Map(records.filter((r) => r.parent === null && !expired(r, now)).map((r) => [r.id, r]));
    const stale = records.filter((r) => expired(r, now) || (r.parent !== null && !live.has(r.parent)));
    if (stale.length > 0) await this.store.delete(stale.map((r) => r.id));
    const logins = new Map<string, number>();
    for (const r of records) if (r.parent !== null && live.has(r.parent) && !expired(r, now)) logins.set(r.parent, (logins.get(r.parent) ?? 0) + 1);
    return [...live.values()].map((r) => info(r, logins.get(r.id) ?? 0));
  }

  /** Revokes a token and its web logins; listeners close the connections that used them. */
  async revoke(id: string): Promise<void> {
    const record = await this.store.get(id);
    if (!record || record.parent !== null || expired(record, this.now())) {
      throw new AgentdError(ErrorCode.TokenNotFound, `no valid token has the id ${id}`, { id });
    }
    const logins = (await this.store.list()).filter((r) => r.parent === id).map((r) => r.id);
    await this.store.delete([id, ...logins]);
    this.revoked([id, ...logins]);
    this.broadcast([id, ...logins]);
  }

  /** Tells this daemon's listeners that these ids are gone (revoked here or, by the cluster bus, elsewhere). */
  revoked(ids: readonly string[]): void {
    for (const listener of this.revokedListeners) listener(ids);
  }

  onRevoked(listener: (ids: readonly string[]) => void): void {
    this.revokedListeners.add(listener);
  }

  /** The access a bearer token gives, or undefined when it is not a valid token. */
  async verifyToken(secret: string): Promise<TokenAccess | undefined> {
    const found = await this.find(secret, 'agt');
    return found && access(found);
  }

  /** The access a web login's cookie gives: its token's, while both are valid. */
  async verifyLogin(secret: string): Promise<TokenAccess | undefined> {
    const login = await this.find(secret, 'agw');
    if (!login?.parent) return undefined;
    const token = await this.store.get(login.parent);
    if (!token || expired(token, this.now())) return undefined;
    return { ...access(token), loginId: login.id, expiresAt: login.expiresAt };
  }

  /** Whether the token (and web login) a connection came with are still valid: for a revocation this daemon did not hear of. */
  async stillValid(access: TokenAccess): Promise<boolean> {
    const now = this.now();
    for (const id of [access.tokenId, access.loginId]) {
      if (id === undefined) continue;
      const record = await this.store.get(id);
      if (!record || expired(record, now)) return false;
    }
    return true;
  }

  /** Exchanges a token for a web login: the cookie's value, and how long it lasts. */
  async login(secret: string): Promise<{ cookie: string; access: TokenAccess; maxAgeMs: number } | undefined> {
    const token = await this.find(secret, 'agt');
    if (!token) return undefined;
    const cookie = newSecret('agw');
    const { id, hash } = idOf(cookie, 'agw')!;
    const now = this.now();
    const expiresAt = Math.min(now + WEB_LOGIN_MS, token.expiresAt ?? Infinity);
    await this.store.put({ ...token, id, hash, name: token.name, createdAt: now, expiresAt, parent: token.id });
    return { cookie, access: { ...access(token), loginId: id, expiresAt }, maxAgeMs: expiresAt - now };
  }

  /** Ends a web login (its cookie no longer works anywhere). */
  async logout(secret: string): Promise<void> {
    const login = await this.find(secret, 'agw');
    if (!login) return;
    await this.store.delete([login.id]);
    this.revoked([login.id]);
    this.broadcast([login.id]);
  }

  private async find(secret: string, kind: SecretKind): Promise<StoredToken | undefined> {
    const key = idOf(secret, kind);
    if (!key) return undefined;
    const record = await this.store.get(key.id);
    if (!record || expired(record, this.now())) return undefined;
    return timingSafeEqual(Buffer.from(record.hash, 'hex'), Buffer.from(key.hash, 'hex')) ? record : undefined;
  }
}

function info(record: StoredToken, webLogins: number): TokenInfo {
  return { id: record.id, name: record.name, role: record.role, sessions: record.sessions, createdAt: record.createdAt, expiresAt: record.expiresAt, webLogins };
}

function access(token: StoredToken): TokenAccess {
  return {
    kind: 'token',
    tokenId: token.id,
    name: token.name,
    role: token.role,
    sessions: token.sessions ? new Set(token.sessions) : null,
    expiresAt: token.expiresAt,
  };
}
