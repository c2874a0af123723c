/**
 * The PostgreSQL backend: the same conformance suite as LevelDB, each test on a fresh
 * schema of one real database.
 */
import { after, before, describe } from 'node:test';
import { randomBytes } from 'node:crypto';
import { PgSessionLog } from '../daemon/log/index.js';
import { runSessionLogConformance } from './log-conformance.js';
import { freshDatabase } from './support/postgres.js';

describe('postgres backend', () => {
  let url = '';
  before(async () => {
    url = await freshDatabase();
  });
  after(() => undefined);
  runSessionLogConformance('postgres', () => PgSessionLog.open(url, { schema: `c_${randomBytes(5).toString('hex')}` }));
});
