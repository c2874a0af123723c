/** Token records in PostgreSQL (see TokenStore): one table, so every daemon on the database accepts the same tokens. */
import { LogError, type StoredToken, type TokenStore } from './session-log.js';
import { checkToken, checkTokenId } from './token-store.js';

/** What the store needs of the log: its queries (failures as LogError) and its write gate. */
export interface PgTokenDeps {
  query<R extends object>(sql: string, params: unknown[]): Promise<R[]>;
  admit<T>(op: () => Promise<T>): Promise<T>;
  checkOpen(): void;
  table: string;
}

export class PgTokenStore implements TokenStore {
  constructor(private readonly deps: PgTokenDeps) {}

  put(token: StoredToken): Promise<void> {
    return this.deps.admit(async () => {
      const record = checkToken(token);
      const rows = await this.deps.query<{ id: string }>(`INSERT INTO ${this.deps.table} (id, record) VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING RETURNING id`, [record.id, JSON.stringify(record)]);
      if (rows.length === 0) throw new LogError('exists', `token ${record.id} already exists`);
    });
  }

  async get(id: string): Promise<StoredToken | undefined> {
    this.deps.checkOpen();
    checkTokenId(id);
    const rows = await this.deps.query<{ record: StoredToken }>(`SELECT record FROM ${this.deps.table} WHERE id = $1`, [id]);
    return rows[0]?.record;
  }

  async list(): Promise<StoredToken[]> {
    this.deps.checkOpen();
    const rows = await this.deps.query<{ record: StoredToken }>(`SELECT record FROM ${this.deps.table} ORDER BY id`, []);
    return rows.map((row) => row.record);
  }

  delete(ids: readonly string[]): Promise<number> {
    return this.deps.admit(async () => {
      if (!Array.isArray(ids)) throw new LogError('invalid', 'ids must be an array');
      for (const id of ids) checkTokenId(id);
      const rows = await this.deps.query<{ id: string }>(`DELETE FROM ${this.deps.table} WHERE id = ANY($1::text[]) RETURNING id`, [[...new Set(ids)]]);
      return rows.length;
    });
  }
}
