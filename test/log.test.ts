/**
 * Both backends run the conformance suite; LevelDB also proves persistence across reopen
 * and that a real storage failure (a file size limit) rejects and writes nothing.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { LevelSessionLog, LogError, MemorySessionLog } from '../daemon/log/index.js';
import { SESSION_COUNT_KEY } from '../daemon/log/keys.js';
import type { NewEvent } from '../daemon/log/index.js';
import { runSessionLogConformance } from './log-conformance.js';
import { sha256OfData } from './support/log-crash-writer.js';
import type { AckLine } from './support/log-crash-writer.js';
import { readAll } from './support/log.js';

const WRITER = fileURLToPath(new URL('./support/log-crash-writer.js', import.meta.url));

/** Temp dirs for one describe block, removed after it. */
function tempDirs(): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentd-log-'));
    dirs.push(dir);
    return dir;
  };
}

runSessionLogConformance('memory', () => Promise.resolve(new MemorySessionLog()));

describe('level backend', () => {
  const dir = tempDirs();
  runSessionLogConformance('level', () => LevelSessionLog.open(dir()));
});

describe('LevelSessionLog', () => {
  const dir = tempDirs();

  it('says it is durable and group-commits', async () => {
    const log = await LevelSessionLog.open(dir());
    assert.deepEqual(log.supports, { durable: true, groupCommit: true, sharedWriters: false });
    await log.close();
  });

  it('keeps sessions, heads, events and metadata across reopen', async () => {
    const location = dir();
    let log = await LevelSessionLog.open(location);
    for (const id of ['s_1', 's_2', 's_3']) {
      await log.create({ sessionId: id, createdAt: 1, updatedAt: 1, title: id }, [{ type: 'session.created', data: { id } }]);
    }
    await log.append('s_2', [{ type: 'user.message', data: { text: 'hi' } }], { status: 'running' });
    await log.close();

    log = await LevelSessionLog.open(location);
    assert.equal(await log.head('s_1'), 1);
    assert.equal(await log.head('s_2'), 2);
    assert.equal((await log.getMeta('s_2'))?.status, 'running');
    assert.deepEqual((await log.list()).sessions.map((s) => s.sessionId), ['s_3', 's_2', 's_1']);
    // The head is reloaded from the last key, so appending continues densely.
    assert.deepEqual(await log.append('s_2', [{ type: 'turn.completed', data: {} }]), [2]);
    await assert.rejects(log.create({ sessionId: 's_1', createdAt: 1, updatedAt: 1 }, []), (e: unknown) => e instanceof LogError && e.kind === 'exists');
    await log.close();
  });

  it('keeps the session count and checkpoints across reopen, and counts a store from before the counter once', async () => {
    const location = dir();
    let log = await LevelSessionLog.open(location);
    for (const id of ['s_1', 's_2', 's_3']) await log.create({ sessionId: id, createdAt: 1, updatedAt: 1 }, [{ type: 'note', data: {} }]);
    assert.equal(await log.putCheckpoint('s_2', { seq: 1, state: 'two words' }), true);
    await log.close();
    log = await LevelSessionLog.open(location);
    assert.equal(await log.count(), 3);
    assert.deepEqual(await log.getCheckpoint('s_2'), { seq: 1, state: 'two words' });
    assert.equal(await log.putCheckpoint('s_2', { seq: 0, state: 'older' }), false, 'the kept seq is known after reopen');
    await log.close();
    // A store written before the counter existed: the key is removed, as it was never there.
    const raw = new ClassicLevel<string, string>(location);
    await raw.del(SESSION_COUNT_KEY);
    await raw.close();
    log = await LevelSessionLog.open(location);
    assert.equal(await log.count(), 3);
    await log.create({ sessionId: 's_4', createdAt: 1, updatedAt: 1 }, []);
    assert.equal(await log.count(), 4);
    await log.close();
  });

  it('keeps its per-session cache bounded, by sessions and by metadata bytes, and reloads what it dropped', async () => {
    const log = await LevelSessionLog.open(dir());
    try {
      // More sessions than the cache keeps, each touched by an append.
      for (let i = 0; i < 1500; i++) {
        const id = `s_${String(i).padStart(5, '0')}`;
        await log.create({ sessionId: id, createdAt: 1, updatedAt: 1 }, [{ type: 'session.created', data: {} }]);
        await log.append(id, [{ type: 'note', data: { i } }], { status: 'idle' });
      }
      assert.ok(log.cachedSessions <= 1024, `${log.cachedSessions} sessions cached`);
      // Big metadata (a 256 KiB system prompt each): far fewer fit in the byte bound.
      for (let i = 0; i < 200; i++) {
        await log.create({ sessionId: `s_big${i}`, createdAt: 1, updatedAt: 1, system: 'p'.repeat(256 * 1024) }, []);
      }
      assert.ok(log.cachedSessions <= 130, `${log.cachedSessions} big sessions cached`);
      // A session dropped from the cache long ago reads and appends densely.
      assert.equal(await log.head('s_00000'), 2);
      assert.deepEqual(await log.append('s_00000', [{ type: 'note', data: {} }], { status: 'done' }), [2]);
      assert.equal((await log.getMeta('s_00000'))?.status, 'done');
      assert.equal(await log.head('s_00000'), 3);
    } finally {
      await log.close();
    }
  });

  it('returns byte-identical data after reopen', async () => {
    const location = dir();
    const data: Record<string, unknown>[] = [
      { text: 'plain' },
      { text: 'é✓😀 \u0000\u001f "quoted" \\ back\nslash', nested: { a: [1, 2.5, -0, 1e300, null, true], b: {} } },
      { big: 'x'.repeat(100_000) },
      { order: 'keys', z: 1, a: 2, m: { y: 1, b: 2 } },
    ];
    const input: NewEvent[] = data.map((d) => ({ type: 'tool.result', data: d }));
    let log = await LevelSessionLog.open(location);
    await log.create({ sessionId: 's_bytes', createdAt: 1, updatedAt: 1 }, input);
    const before = (await readAll(log, 's_bytes')).map((e) => JSON.stringify(e));
    await log.close();
    log = await LevelSessionLog.open(location);
    const after = await readAll(log, 's_bytes');
    assert.deepEqual(after.map((e) => JSON.stringify(e)), before);
    assert.deepEqual(after.map((e) => sha256OfData(e.data)), data.map((d) => sha256OfData(JSON.parse(JSON.stringify(d)) as Record<string, unknown>)));
    await log.close();
  });

  it('fails a whole batch and the same sessions queued behind it, then continues densely', async () => {
    // A failure injected at the batch write: the one path a real EIO takes, minus the disk.
    let gate: Promise<void> | undefined;
    let started = (): void => undefined;
    const log = await LevelSessionLog.open(dir(), {
      wrapWrite: (write) => async (ops) => {
        if (!gate) return write(ops);
        const wait = gate;
        gate = undefined;
        started();
        await wait;
        throw Object.assign(new Error('IO error: injected: Input/output error'), { code: 'LEVEL_IO_ERROR' });
      },
    });
    const one = (text: string): NewEvent[] => [{ type: 'note', data: { text } }];
    await log.create({ sessionId: 's_a', createdAt: 1, updatedAt: 1 }, one('a0').concat(one('a1')));
    await log.create({ sessionId: 's_b', createdAt: 1, updatedAt: 1 }, []);
    await log.create({ sessionId: 's_c', createdAt: 1, updatedAt: 1 }, []);
    let release = (): void => undefined;
    gate = new Promise((resolve) => (release = resolve));
    const writing = new Promise<void>((resolve) => (started = resolve));
    const failing = [log.append('s_a', one('lost'), { status: 'lost' }), log.append('s_b', one('lost'))];
    await writing;
    const behind = log.append('s_a', one('behind'));
    const other = log.append('s_c', one('c0'));
    // Let both reach the queue before the failure lands.
    await new Promise((resolve) => setImmediate(resolve));
    release();
    const isStorage = (e: unknown): boolean => e instanceof LogError && e.kind === 'storage' && /Input\/output error/.test(e.message);
    for (const p of [...failing, behind]) await assert.rejects(p, isStorage);
    assert.deepEqual(await other, [0]);
    assert.equal(await log.head('s_a'), 2);
    assert.deepEqual(await log.append('s_a', one('a2')), [2]);
    assert.deepEqual(await log.append('s_b', one('b0')), [0]);
    assert.equal((await log.getMeta('s_a'))?.status, undefined);
    assert.deepEqual((await readAll(log, 's_a')).map((e) => e.data['text']), ['a0', 'a1', 'a2']);
    await log.close();
  });

  it('writes again once the disk has room, without being reopened by hand', async () => {
    const location = dir();
    // A soft limit only: the test may raise it again for the running writer (the hard one it could not).
    const child = spawn('bash', ['-c', 'ulimit -S -f 256; exec "$0" "$@"', process.execPath, WRITER, location, 'recover'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    const lines = (): Array<AckLine & { error?: { kind: string } }> => out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    let sawFailure!: () => void;
    const failed = new Promise<void>((resolve) => (sawFailure = resolve));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (lines().some((l) => l.error)) sawFailure();
    });
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await failed;
    const walAtFailure = readdirSync(location).filter((f) => f.endsWith('.log'));
    // Room again: lift the file size limit of the running writer.
    await new Promise<void>((resolve, reject) =>
      spawn('prlimit', ['--pid', String(child.pid), '--fsize=unlimited:unlimited']).on('close', (code) => (code === 0 ? resolve() : reject(new Error(`prlimit exited ${code}`)))),
    );
    child.stdin!.end('go\n');
    await closed;
    const all = lines();
    const firstError = all.findIndex((l) => l.error);
    const after = all.slice(firstError + 1);
    assert.deepEqual(after.filter((l) => l.error), [], 'appends after the disk had room again failed');
    assert.equal(after.length, 5);
    const acked = all.filter((l) => !l.error);
    assert.deepEqual(acked.map((a) => a.seq), acked.map((_, i) => i), 'seqs go on densely after the failure');
    // The store was reopened: later writes went to a fresh write-ahead log, not after a
    // record the failed write may have torn (and a failed fsync would have made LevelDB
    // refuse every later write until then).
    const walAfter = readdirSync(location).filter((f) => f.endsWith('.log'));
    assert.notDeepEqual(walAfter, walAtFailure);
    const log = await LevelSessionLog.open(location);
    const stored = await readAll(log, 's_fill');
    assert.deepEqual(stored.map((e) => sha256OfData(e.data)), acked.map((a) => a.sha256));
    await log.close();
  });

  it('rejects appends with kind storage when writes really fail, and keeps nothing unacknowledged', async () => {
    const location = dir();
    // RLIMIT_FSIZE (KiB in bash) binds root too; Node ignores SIGXFSZ, so write() fails with EFBIG.
    const child = spawn('bash', ['-c', 'ulimit -f 256; exec "$0" "$@"', process.execPath, WRITER, location, 'fill'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    await new Promise<void>((resolve) => child.on('close', () => resolve()));
    const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AckLine & { error?: { kind: string; message: string } });
    const failure = lines.find((l) => l.error)?.error;
    assert.ok(failure, 'the writer never saw a failure');
    assert.equal(failure.kind, 'storage');
    assert.match(failure.message, /too large|EFBIG|IO error/i);
    const acked = lines.filter((l) => !l.error);
    assert.ok(acked.length > 10, `only ${acked.length} appends before the failure`);

    const log = await LevelSessionLog.open(location);
    const stored = await readAll(log, 's_fill');
    assert.equal(stored.length, acked.length, 'the failed append left an event behind');
    assert.deepEqual(stored.map((e) => sha256OfData(e.data)), acked.map((a) => a.sha256));
    await log.close();
  });
});
