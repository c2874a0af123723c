/**
 * Token records (see TokenStore in session-log.ts): the argument checks every backend
 * shares, and the in-memory and LevelDB stores. PostgreSQL's is in pg-tokens.ts.
 */
import type { ClassicLevel } from 'classic-level';
import { LogError, type StoredToken, type TokenStore } from './session-log.js';
import { storageError } from './group-commit.js';

const TOKEN_ID = /^(tok|web)_[0-9a-f]{16}$/;
const HASH = /^[0-9a-f]{64}$/;

export function checkTokenId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !TOKEN_ID.test(id)) throw new LogError('invalid', `invalid token id ${JSON.stringify(id)}: expected tok_ or web_ and 16 hex digits`);
}

const isTime = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** A record as every backend stores it: exactly these fields, a JSON round trip away from the caller's object. */
export function checkToken(token: unknown): StoredToken {
  if (typeof token !== 'object' || token === null || Array.isArray(token)) throw new LogError('invalid', 'a token record must be an object');
  const t = token as Record<string, unknown>;
  checkTokenId(t.id);
  const bad = (field: string, what: string) => new LogError('invalid', `token ${String(t.id)}: ${field} must be ${what}`);
  if (typeof t.hash !== 'string' || !HASH.test(t.hash)) throw bad('hash', '64 hex digits (SHA-256)');
  if (typeof t.name !== 'string' || t.name.length > 200) throw bad('name', 'a string of at most 200 characters');
  if (t.role !== 'observer' && t.role !== 'controller') throw bad('role', 'observer or controller');
  if (t.sessions !== null && !(Array.isArray(t.sessions) && t.sessions.length <= 256 && t.sessions.every((s) => typeof s === 'string' && s.length <= 200))) {
    throw bad('sessions', 'null or at most 256 session ids');
  }
  if (!isTime(t.createdAt)) throw bad('createdAt', 'a time in ms');
  if (t.expiresAt !== null && !isTime(t.expiresAt)) throw bad('expiresAt', 'null or a time in ms');
  if (t.parent !== null) checkTokenId(t.parent);
  const { id, hash, name, role, sessions, createdAt, expiresAt, parent } = t as unknown as StoredToken;
  return { id, hash, name, role, sessions: sessions && [...sessions], createdAt, expiresAt, parent };
}

function checkIds(ids: unknown): readonly string[] {
  if (!Array.isArray(ids)) throw new LogError('invalid', 'ids must be an array');
  for (const id of ids) checkTokenId(id);
  return ids as string[];
}

const copy = (token: StoredToken): StoredToken => ({ ...token, sessions: token.sessions && [...token.sessions] });

/** Tokens in a Map: the memory backend's. */
export class MemoryTokenStore implements TokenStore {
  private readonly tokens = new Map<string, StoredToken>();

  constructor(private readonly checkOpen: () => void) {}

  async put(token: StoredToken): Promise<void> {
    this.checkOpen();
    const record = checkToken(token);
    if (this.tokens.has(record.id)) throw new LogError('exists', `token ${record.id} already exists`);
    this.tokens.set(record.id, record);
  }

  async get(id: string): Promise<StoredToken | undefined> {
    this.checkOpen();
    checkTokenId(id);
    const found = this.tokens.get(id);
    return found && copy(found);
  }

  async list(): Promise<StoredToken[]> {
    this.checkOpen();
    return [...this.tokens.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map(copy);
  }

  async delete(ids: readonly string[]): Promise<number> {
    this.checkOpen();
    let deleted = 0;
    for (const id of new Set(checkIds(ids))) if (this.tokens.delete(id)) deleted++;
    return deleted;
  }
}

/** `t!<id>` keys, beside the sessions' `e!` and `m!` (keys.ts). */
const tokenKey = (id: string) => `t!${id}`;
const TOKENS_FIRST = 't!';
const TOKENS_END = 't"';

/**
 * Tokens in the session log's LevelDB, each write synced on its own (tokens change
 * rarely). Writes run one at a time, so an id cannot be taken twice.
 */
export class LevelTokenStore implements TokenStore {
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    /** The store now (the log may reopen it after a failed write). */
    private readonly db: () => Promise<ClassicLevel<string, string>>,
    /** The log's write gate: closing the log waits for token writes too. */
    private readonly admit: <T>(op: () => Promise<T>) => Promise<T>,
    private readonly checkOpen: () => void,
  ) {}

  put(token: StoredToken): Promise<void> {
    return this.serially(async () => {
      const record = checkToken(token);
      const db = await this.db();
      if ((await db.get(tokenKey(record.id))) !== undefined) throw new LogError('exists', `token ${record.id} already exists`);
      await db.put(tokenKey(record.id), JSON.stringify(record), { sync: true });
    });
  }

  async get(id: string): Promise<StoredToken | undefined> {
    this.checkOpen();
    checkTokenId(id);
    const json = await (await this.db()).get(tokenKey(id)).catch((cause: unknown) => Promise.reject(storageError(cause, 'read')));
    return json === undefined ? undefined : (JSON.parse(json) as StoredToken);
  }

  async list(): Promise<StoredToken[]> {
    this.checkOpen();
    const values = await (await this.db()).values({ gte: TOKENS_FIRST, lt: TOKENS_END }).all().catch((cause: unknown) => Promise.reject(storageError(cause, 'read')));
    return values.map((json) => JSON.parse(json) as StoredToken);
  }

  delete(ids: readonly string[]): Promise<number> {
    return this.serially(async () => {
      const unique = [...new Set(checkIds(ids))];
      const db = await this.db();
      const present = (await db.getMany(unique.map(tokenKey))).filter((v) => v !== undefined).length;
      if (unique.length > 0) await db.batch(unique.map((id) => ({ type: 'del' as const, key: tokenKey(id) })), { sync: true });
      return present;
    });
  }

  /** One write after the other; a failure is the caller's alone. */
  private serially<T>(op: () => Promise<T>): Promise<T> {
    const run = this.admit(() => this.writes.then(op));
    this.writes = run.catch(() => undefined);
    return run.catch((cause: unknown) => Promise.reject(cause instanceof LogError ? cause : storageError(cause, 'write')));
  }
}
