/**
 * The PostgreSQL backend: the same conformance suite as LevelDB, each test on a fresh
 * schema of one real database; then what only a shared log has: writers in separate
 * connections racing on one session, live follow across them, and lease fencing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LogError, PgLeases, PgSessionLog } from '../daemon/log/index.js';
import type { StoredEvent } from '../daemon/log/index.js';
import { runSessionLogConformance } from './log-conformance.js';
import { readAll } from './support/log.js';
import { freshDatabase } from './support/postgres.js';
import { until } from './support/until.js';

const schemaName = () => `c_${randomBytes(5).toString('hex')}`;

describe('postgres backend', () => {
  let url = '';
  before(async () => {
    url = await freshDatabase();
  });
  runSessionLogConformance('postgres', () => PgSessionLog.open(url, { schema: schemaName() }));
});

describe('PgSessionLog shared by several writers', () => {
  let url = '';
  const logs: PgSessionLog[] = [];
  /** Two logs on one schema, as two daemons would have: separate pools, separate writer ids. */
  async function pair(): Promise<[PgSessionLog, PgSessionLog]> {
    const schema = schemaName();
    const a = await PgSessionLog.open(url, { schema, writerId: 'daemon-a' });
    const b = await PgSessionLog.open(url, { schema, writerId: 'daemon-b' });
    logs.push(a, b);
    return [a, b];
  }
  before(async () => {
    url = await freshDatabase();
  });
  after(async () => {
    await Promise.all(logs.map((log) => log.close()));
  });

  it('keeps seqs dense and unique while two writers race on one session', async () => {
    const [a, b] = await pair();
    await a.create({ sessionId: 's_race', createdAt: 1, updatedAt: 1 }, []);
    const acked = new Map<number, string>();
    const writer = async (log: PgSessionLog, name: string) => {
      for (let i = 0; i < 150; i++) {
        const n = 1 + (i % 3);
        const events = Array.from({ length: n }, (_, k) => ({ type: 'note', data: { uid: `${name}:${i}:${k}` } }));
        const seqs = await log.append('s_race', events, { last: name });
        seqs.forEach((seq, k) => {
          assert.ok(!acked.has(seq), `seq ${seq} acknowledged twice`);
          acked.set(seq, `${name}:${i}:${k}`);
        });
      }
    };
    // Several appends in flight per writer, so the two group commits interleave.
    await Promise.all([writer(a, 'a1'), writer(a, 'a2'), writer(b, 'b1'), writer(b, 'b2')]);
    const stored = await readAll(b, 's_race');
    assert.deepEqual(stored.map((e) => e.seq), Array.from({ length: stored.length }, (_, i) => i));
    assert.equal(stored.length, acked.size);
    for (const event of stored) assert.equal(event.data['uid'], acked.get(event.seq));
    assert.equal(await a.head('s_race'), stored.length);
  });

  it('follows another writer live, from any cursor, without gap or duplicate', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    await a.create({ sessionId: 's_follow', createdAt: 1, updatedAt: 1 }, [{ type: 'note', data: { i: -1 } }]);
    const total = 1 + 400;
    const got: StoredEvent[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const sub = await b.subscribe('s_follow', 0, (batch) => {
      got.push(...batch);
      if (got.length >= total) done();
    });
    // Writes from both sides: b's own are published directly, a's arrive by NOTIFY.
    await Promise.all([
      (async () => {
        for (let i = 0; i < 200; i++) await a.append('s_follow', [{ type: 'note', data: { from: 'a', i } }]);
      })(),
      (async () => {
        for (let i = 0; i < 200; i++) await b.append('s_follow', [{ type: 'note', data: { from: 'b', i } }]);
      })(),
    ]);
    await all;
    sub.close();
    assert.deepEqual(got.map((e) => e.seq), Array.from({ length: total }, (_, i) => i));
    assert.deepEqual(got, await readAll(a, 's_follow'));
  });

  it('fences a writer whose lease was taken over', async () => {
    const [a, b] = await pair();
    await a.create({ sessionId: 's_lease', createdAt: 1, updatedAt: 1 }, []);
    const leasesA = new PgLeases(a, 300);
    const leasesB = new PgLeases(b, 300);
    try {
      const leaseA = await leasesA.acquire('s_lease');
      assert.ok(leaseA, 'a free lease is granted');
      assert.equal(await leasesB.acquire('s_lease'), undefined, 'a live lease is not granted to another holder');
      await a.append('s_lease', [{ type: 'note', data: { by: 'a' } }], undefined, { fence: leaseA });
      // a stops renewing (as a paused daemon would); after expiry b takes over.
      await leasesA.close();
      const leaseB = await until(() => leasesB.acquire('s_lease'), 'the lease to expire and move to b');
      assert.ok(leaseB.epoch > leaseA.epoch, 'the expired lease moves to b with a higher epoch');
      await assert.rejects(a.append('s_lease', [{ type: 'note', data: { by: 'a, late' } }], undefined, { fence: leaseA }), (e: unknown) => e instanceof LogError && e.kind === 'fenced');
      await assert.rejects(a.patchMeta('s_lease', { by: 'a, late' }, { fence: leaseA }), (e: unknown) => e instanceof LogError && e.kind === 'fenced');
      await b.append('s_lease', [{ type: 'note', data: { by: 'b' } }], undefined, { fence: leaseB });
      const events = await readAll(a, 's_lease');
      assert.deepEqual(events.map((e) => e.data['by']), ['a', 'b']);
      assert.equal((await a.getMeta('s_lease'))?.['by'], undefined);
      // Released, the lease is free at once, with the epoch still growing.
      await leasesB.release(leaseB);
      const again = await leasesA.acquire('s_lease');
      assert.ok(again && again.epoch > leaseB.epoch);
    } finally {
      await leasesA.close();
      await leasesB.close();
    }
  });

  it('keeps following another writer after its notification connection is cut, and catches up on what it missed', async () => {
    const [a, b] = await pair();
    await a.create({ sessionId: 's_cut', createdAt: 1, updatedAt: 1 }, []);
    const got: StoredEvent[] = [];
    const sub = await b.subscribe('s_cut', 0, (batch) => void got.push(...batch));
    try {
      await a.append('s_cut', [{ type: 'note', data: { i: 0 } }]);
      await until(() => got.length === 1, 'the first event by NOTIFY');
      // Every LISTEN connection of this database goes, as when the server restarts them.
      const cut = await a.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`,
        [],
      );
      assert.ok(cut.length > 0, 'a listening connection was cut');
      await a.append('s_cut', [{ type: 'note', data: { i: 1 } }]);
      await a.append('s_cut', [{ type: 'note', data: { i: 2 } }]);
      await until(() => got.length === 3, 'the events appended across the cut');
      assert.deepEqual(got.map((e) => e.data['i']), [0, 1, 2]);
    } finally {
      sub.close();
    }
  });

  it('refuses a database whose layout is newer than it knows, and keeps its data', async () => {
    const [a] = await pair();
    await a.create({ sessionId: 's_kept', createdAt: 1, updatedAt: 1 }, [{ type: 'note', data: {} }]);
    await a.query(`UPDATE ${a.table('settings')} SET value = '99' WHERE key = 'schema_version'`, []);
    await assert.rejects(PgSessionLog.open(url, { schema: a.schema }), (e: unknown) => e instanceof LogError && e.kind === 'storage' && /layout version 99, newer than this agentd knows/.test(e.message));
    assert.equal(await a.head('s_kept'), 1);
  });

  it('lists unfinished sessions whose lease is free or expired as orphans', async () => {
    const [a] = await pair();
    const leases = new PgLeases(a, 60_000);
    try {
      await a.create({ sessionId: 's_idle', createdAt: 1, updatedAt: 1, status: 'idle' }, []);
      await a.create({ sessionId: 's_free', createdAt: 1, updatedAt: 1, status: 'running' }, []);
      await a.create({ sessionId: 's_held', createdAt: 1, updatedAt: 1, status: 'queued' }, []);
      assert.ok(await leases.acquire('s_held'));
      assert.deepEqual(await leases.orphans(10), ['s_free']);
    } finally {
      await leases.close();
    }
  });
});
