/**
 * The SessionLog conformance suite, written against the interface only. A backend joins
 * with one line: `runSessionLogConformance('level', () => LevelSessionLog.open(dir()))`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogError } from '../daemon/log/session-log.js';
import type { NewEvent, SessionLog, SessionMeta, StoredEvent, StoredToken, Subscription, SubscriptionEnd } from '../daemon/log/session-log.js';
import { until } from './support/until.js';

/** A lost or repeated event shows up as a wait that never ends: fail it instead of hanging. */
const HANG_GUARD_MS = 30_000;

export type SessionLogFactory = () => Promise<SessionLog>;

function meta(sessionId: string, extra: Record<string, unknown> = {}): SessionMeta {
  return { sessionId, createdAt: 1000, updatedAt: 1000, ...extra };
}

function events(n: number, type = 'note', base = 0): NewEvent[] {
  return Array.from({ length: n }, (_, i) => ({ type, data: { i: base + i, text: `event ${base + i}` } }));
}

async function rejectsWith(promise: Promise<unknown>, kind: LogError['kind']): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof LogError, `expected LogError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    return true;
  });
}

/** Opens a log, runs `body`, closes it whatever happens. */
async function withLog(factory: SessionLogFactory, body: (log: SessionLog) => Promise<void>): Promise<void> {
  const log = await factory();
  try {
    await body(log);
  } finally {
    await log.close();
  }
}

function seqs(list: readonly StoredEvent[]): number[] {
  return list.map((e) => e.seq);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Collects subscription batches and resolves `reached(n)` once seq n-1 has arrived. */
class Collector {
  readonly received: StoredEvent[] = [];
  private waiters: { seq: number; resolve: () => void }[] = [];
  constructor(private readonly delay: () => Promise<void> = () => Promise.resolve()) {}
  readonly listener = async (batch: StoredEvent[]): Promise<void> => {
    for (const event of batch) this.received.push(event);
    const last = batch[batch.length - 1]!.seq;
    this.waiters = this.waiters.filter((w) => (w.seq <= last + 1 ? (w.resolve(), false) : true));
    await this.delay();
  };
  reached(head: number): Promise<void> {
    const last = this.received[this.received.length - 1]?.seq ?? -1;
    if (last + 1 >= head) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq: head, resolve }));
  }
}

/** A token record; `n` makes its id and hash. */
function token(n: number, extra: Partial<StoredToken> = {}): StoredToken {
  const hex = n.toString(16).padStart(16, '0');
  return { id: `tok_${hex}`, hash: hex.repeat(4), name: `t${n}`, role: 'observer', sessions: null, createdAt: 1000 + n, expiresAt: null, parent: null, ...extra };
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Appends with `appendSome` (which says how many events it appended) until the
 * subscription ends or the session holds `limit` events; resolves with how many it holds.
 */
async function appendUntilEnded(sub: Subscription, count: number, limit: number, appendSome: () => Promise<number>): Promise<number> {
  let ended = false;
  void sub.ended.then(() => (ended = true));
  while (!ended && count < limit) count += await appendSome();
  return count;
}

export function runSessionLogConformance(name: string, factory: SessionLogFactory): void {
  describe(`SessionLog conformance: ${name}`, () => {
    describe('create, append, read', () => {
      it('creates a session with dense seqs from 0 and reads them back', () =>
        withLog(factory, async (log) => {
          assert.deepEqual(await log.create(meta('s_a'), events(3)), [0, 1, 2]);
          assert.deepEqual(await log.append('s_a', events(2, 'note', 3)), [3, 4]);
          assert.deepEqual(await log.append('s_a', []), []);
          assert.equal(await log.head('s_a'), 5);
          const page = await log.read('s_a');
          assert.equal(page.headSeq, 5);
          assert.equal(page.next, undefined);
          assert.deepEqual(seqs(page.events), [0, 1, 2, 3, 4]);
          for (const [i, event] of page.events.entries()) {
            assert.equal(event.type, 'note');
            assert.deepEqual(event.data, { i, text: `event ${i}` });
            assert.equal(typeof event.ts, 'number');
          }
        }));

      it('creates a session with no events', () =>
        withLog(factory, async (log) => {
          assert.deepEqual(await log.create(meta('s_empty'), []), []);
          assert.equal(await log.head('s_empty'), 0);
          assert.deepEqual(await log.read('s_empty'), { events: [], headSeq: 0 });
        }));

      it('refuses a second create of the same id', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_a'), events(1));
          await rejectsWith(log.create(meta('s_a'), events(1)), 'exists');
          const racing = await Promise.allSettled([log.create(meta('s_b'), []), log.create(meta('s_b'), [])]);
          assert.equal(racing.filter((r) => r.status === 'fulfilled').length, 1);
          assert.equal(await log.head('s_a'), 1);
        }));

      it('reads any range with from, to, limit and next', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_r'), events(50));
          let page = await log.read('s_r', { from: 10, limit: 5 });
          assert.deepEqual(seqs(page.events), [10, 11, 12, 13, 14]);
          assert.equal(page.next, 15);
          assert.equal(page.headSeq, 50);
          page = await log.read('s_r', { from: 10, to: 13 });
          assert.deepEqual(seqs(page.events), [10, 11, 12]);
          assert.equal(page.next, undefined);
          page = await log.read('s_r', { from: 45, limit: 5 });
          assert.deepEqual(seqs(page.events), [45, 46, 47, 48, 49]);
          assert.equal(page.next, undefined);
          page = await log.read('s_r', { from: 48, to: 1000 });
          assert.deepEqual(seqs(page.events), [48, 49]);
          // Paging with `next` visits every event once.
          const all: number[] = [];
          let from: number | undefined = 0;
          while (from !== undefined) {
            page = await log.read('s_r', { from, limit: 7 });
            all.push(...seqs(page.events));
            from = page.next;
          }
          assert.deepEqual(all, range(0, 50));
        }));

      it('filters by type while next moves past skipped events', () =>
        withLog(factory, async (log) => {
          const mixed: NewEvent[] = range(0, 20).map((i) => ({ type: i % 3 === 0 ? 'user.message' : 'tool.result', data: { i } }));
          await log.create(meta('s_t'), mixed);
          let page = await log.read('s_t', { types: ['user.message'] });
          assert.deepEqual(seqs(page.events), [0, 3, 6, 9, 12, 15, 18]);
          assert.equal(page.next, undefined);
          page = await log.read('s_t', { types: ['user.message'], from: 1, limit: 2 });
          assert.deepEqual(seqs(page.events), [3, 6]);
          assert.equal(page.next, 7);
          page = await log.read('s_t', { types: ['nothing'] });
          assert.deepEqual(page.events, []);
          assert.equal(page.next, undefined);
        }));

      it('cuts a page by bytes: whole events, at least one, and next says where to go on', () =>
        withLog(factory, async (log) => {
          // Events of about 1 KB each (their stored JSON a little more).
          const big = (n: number, type = 'note') => Array.from({ length: n }, (_, i) => ({ type, data: { i, text: 'b'.repeat(1000) } }));
          await log.create(meta('s_b'), [...big(10), ...big(4, 'other')]);
          let page = await log.read('s_b', { maxBytes: 3500 });
          assert.deepEqual(seqs(page.events), [0, 1, 2]);
          assert.equal(page.next, 3);
          page = await log.read('s_b', { from: 5, maxBytes: 1 });
          assert.deepEqual(seqs(page.events), [5], 'a page never stalls on an event bigger than the bound');
          assert.equal(page.next, 6);
          page = await log.read('s_b', { types: ['other'], maxBytes: 2500 });
          assert.deepEqual(seqs(page.events), [10, 11]);
          assert.equal(page.next, 12);
          const all: number[] = [];
          for (let from: number | undefined = 0; from !== undefined; ) {
            page = await log.read('s_b', { from, maxBytes: 2500 });
            all.push(...seqs(page.events));
            from = page.next;
          }
          assert.deepEqual(all, range(0, 14));
          await rejectsWith(log.read('s_b', { maxBytes: 0 }), 'invalid');
        }));

      it('gives an empty page with the head when from is past it', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_p'), events(4));
          assert.deepEqual(await log.read('s_p', { from: 4 }), { events: [], headSeq: 4 });
          assert.deepEqual(await log.read('s_p', { from: 100, limit: 3 }), { events: [], headSeq: 4 });
          assert.deepEqual(await log.read('s_p', { from: 3, to: 2 }), { events: [], headSeq: 4 });
        }));

      it('keeps stored events apart from the caller’s objects', () =>
        withLog(factory, async (log) => {
          const input = events(1);
          await log.create(meta('s_c'), input);
          input[0]!.data['i'] = 'changed';
          const first = await log.read('s_c');
          first.events[0]!.data['i'] = 'changed too';
          assert.equal((await log.read('s_c')).events[0]!.data['i'], 0);
        }));
    });

    describe('metadata and listing', () => {
      it('merges patches from append and patchMeta, bumping updatedAt', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_m', { title: 'first', status: 'idle' }), []);
          assert.deepEqual(await log.getMeta('s_m'), meta('s_m', { title: 'first', status: 'idle' }));
          await log.append('s_m', events(1), { status: 'running', usage: { tokens: 5 } });
          let got = await log.getMeta('s_m');
          assert.equal(got?.title, 'first');
          assert.equal(got?.status, 'running');
          assert.deepEqual(got?.usage, { tokens: 5 });
          assert.ok(got!.updatedAt > 1000);
          assert.equal(got?.createdAt, 1000);
          const patched = await log.patchMeta('s_m', { title: undefined, status: 'idle' });
          got = await log.getMeta('s_m');
          assert.deepEqual(patched, got);
          assert.equal('title' in got!, false);
          assert.equal(got?.status, 'idle');
          assert.equal(await log.head('s_m'), 1);
          assert.equal(await log.getMeta('s_none'), undefined);
        }));

      it('applies concurrent patches of one session in call order', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_o'), []);
          await Promise.all(range(0, 20).map((i) => (i % 2 ? log.patchMeta('s_o', { n: i }) : log.append('s_o', events(1), { n: i }))));
          assert.equal((await log.getMeta('s_o'))?.n, 19);
        }));

      it('lists newest first with a cursor and a filter applied before the limit', () =>
        withLog(factory, async (log) => {
          const ids = range(0, 10).map((i) => `s_${(1000 + i).toString(36)}`);
          for (const [i, id] of ids.entries()) await log.create(meta(id, { status: i % 2 ? 'odd' : 'even' }), []);
          const newestFirst = [...ids].reverse();
          const seen: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await log.list({ limit: 3, ...(cursor === undefined ? {} : { cursor }) });
            assert.ok(page.sessions.length <= 3);
            seen.push(...page.sessions.map((s) => s.sessionId));
            cursor = page.cursor;
          } while (cursor !== undefined);
          assert.deepEqual(seen, newestFirst);
          const odd = await log.list({ limit: 2, filter: (m) => m.status === 'odd' });
          assert.deepEqual(odd.sessions.map((s) => s.sessionId), [ids[9], ids[7]]);
          const rest = await log.list({ cursor: odd.cursor!, filter: (m) => m.status === 'odd' });
          assert.deepEqual(rest.sessions.map((s) => s.sessionId), [ids[5], ids[3], ids[1]]);
          assert.equal(rest.cursor, undefined);
          assert.deepEqual((await log.list()).sessions.map((s) => s.sessionId), newestFirst);
          await log.append(ids[9]!, events(5));
          await log.append(ids[8]!, events(2));
          assert.deepEqual((await log.list({ withHeads: true, limit: 4 })).heads, [5, 2, 0, 0]);
          assert.deepEqual((await log.list({ withHeads: true, limit: 2, filter: (m) => m.status === 'odd' })).heads, [5, 0], 'heads follow the filtered sessions');
          assert.equal((await log.list({ limit: 4 })).heads, undefined);
        }));
    });

    describe('count and checkpoints', () => {
      it('counts sessions without listing: each create once, a refused create not at all', () =>
        withLog(factory, async (log) => {
          assert.equal(await log.count(), 0);
          await log.create(meta('s_c0'), events(2));
          await rejectsWith(log.create(meta('s_c0'), []), 'exists');
          assert.equal(await log.count(), 1);
          await Promise.all(range(1, 21).map((i) => log.create(meta(`s_c${i}`), events(1))));
          await log.append('s_c1', events(3));
          assert.equal(await log.count(), 21);
          assert.equal((await log.list()).sessions.length, 21);
        }));

      it('keeps the newest checkpoint beside the log, whole, and never touches the events', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_k'), events(5));
          assert.equal(await log.getCheckpoint('s_k'), undefined);
          const state = JSON.stringify({ v: 1, text: 'spaces, new\nlines, "quotes" and ünïcödé 🙂' });
          assert.equal(await log.putCheckpoint('s_k', { seq: 3, state }), true);
          assert.deepEqual(await log.getCheckpoint('s_k'), { seq: 3, state });
          assert.equal(await log.putCheckpoint('s_k', { seq: 5, state: 'five' }), true);
          assert.equal(await log.putCheckpoint('s_k', { seq: 4, state: 'older' }), false, 'an older checkpoint does not replace a newer one');
          assert.deepEqual(await log.getCheckpoint('s_k'), { seq: 5, state: 'five' });
          assert.equal(await log.putCheckpoint('s_k', { seq: 5, state: 'five again' }), true, 'the same seq may be rewritten');
          assert.deepEqual(await log.getCheckpoint('s_k'), { seq: 5, state: 'five again' });
          assert.deepEqual(seqs((await log.read('s_k')).events), range(0, 5));
          assert.equal(await log.head('s_k'), 5);
          assert.deepEqual((await log.read('s_k')).events.map((e) => e.data['i']), range(0, 5));
          await log.create(meta('s_k2'), []);
          assert.equal(await log.getCheckpoint('s_k2'), undefined, 'checkpoints are per session');
        }));

      it('refuses a checkpoint past the head, of an unknown session, or malformed', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_kb'), events(2));
          await rejectsWith(log.putCheckpoint('s_kb', { seq: 3, state: 'x' }), 'invalid');
          await rejectsWith(log.putCheckpoint('s_kb', { seq: -1, state: 'x' }), 'invalid');
          await rejectsWith(log.putCheckpoint('s_kb', { seq: 1.5, state: 'x' }), 'invalid');
          await rejectsWith(log.putCheckpoint('s_kb', { seq: 1, state: 7 as unknown as string }), 'invalid');
          await rejectsWith(log.putCheckpoint('s_none', { seq: 0, state: 'x' }), 'not_found');
          await rejectsWith(log.getCheckpoint('s_none'), 'not_found');
          await rejectsWith(log.putCheckpoint('bad!id', { seq: 0, state: 'x' }), 'invalid');
          assert.equal(await log.getCheckpoint('s_kb'), undefined);
          assert.equal(await log.putCheckpoint('s_kb', { seq: 0, state: '' }), true, 'seq 0 and an empty state are a checkpoint too');
          assert.deepEqual(await log.getCheckpoint('s_kb'), { seq: 0, state: '' });
        }));

      it('ends with the highest of concurrent checkpoints, whatever order they land in', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_kc'), events(30));
          const kept = await Promise.all(range(0, 30).reverse().map((seq) => log.putCheckpoint('s_kc', { seq, state: `at ${seq}` })));
          assert.equal(kept[0], true);
          assert.deepEqual(await log.getCheckpoint('s_kc'), { seq: 29, state: 'at 29' });
          await Promise.all(range(0, 31).map((seq) => log.putCheckpoint('s_kc', { seq, state: `again ${seq}` })));
          assert.deepEqual(await log.getCheckpoint('s_kc'), { seq: 30, state: 'again 30' });
        }));
    });

    describe('errors', () => {
      it('rejects unknown sessions with not_found', () =>
        withLog(factory, async (log) => {
          await rejectsWith(log.append('s_missing', events(1)), 'not_found');
          await rejectsWith(log.read('s_missing'), 'not_found');
          await rejectsWith(log.head('s_missing'), 'not_found');
          await rejectsWith(log.patchMeta('s_missing', { a: 1 }), 'not_found');
          await rejectsWith(log.subscribe('s_missing', 0, () => undefined), 'not_found');
        }));

      it('rejects bad arguments with invalid and writes nothing', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_i'), events(1));
          await rejectsWith(log.create(meta('bad!id'), []), 'invalid');
          await rejectsWith(log.append('s_i', [{ type: '', data: {} }]), 'invalid');
          await rejectsWith(log.append('s_i', [{ type: 'x', data: [] as unknown as Record<string, unknown> }]), 'invalid');
          await rejectsWith(log.append('s_i', events(1), { sessionId: 'other' }), 'invalid');
          await rejectsWith(log.read('s_i', { from: -1 }), 'invalid');
          await rejectsWith(log.read('s_i', { limit: 0 }), 'invalid');
          await rejectsWith(log.list({ limit: 0 }), 'invalid');
          await rejectsWith(log.append('s_i', events(1), undefined, { ifHead: -1 }), 'invalid');
          if (!log.supports.sharedWriters) await rejectsWith(log.append('s_i', events(1), undefined, { fence: { holder: 'h', epoch: 1 } }), 'invalid');
          assert.equal(await log.head('s_i'), 1);
        }));

      it('writes conditionally on the head: a stale ifHead is a conflict and writes nothing', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_if'), events(2));
          assert.deepEqual(await log.append('s_if', events(1), { a: 1 }, { ifHead: 2 }), [2]);
          await rejectsWith(log.append('s_if', events(1), { a: 2 }, { ifHead: 2 }), 'conflict');
          await rejectsWith(log.patchMeta('s_if', { a: 3 }, { ifHead: 1 }), 'conflict');
          assert.equal((await log.patchMeta('s_if', { b: 1 }, { ifHead: 3 }))['b'], 1);
          assert.equal(await log.head('s_if'), 3);
          assert.equal((await log.getMeta('s_if'))?.['a'], 1);
        }));

      it('names an append\'s first seq before it is durable (a log with one writer), and appends behind it in order', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_seq'), events(2));
          const heard: number[] = [];
          const first = log.append('s_seq', events(2), undefined, { onSequenced: (seq) => heard.push(seq) });
          if (log.supports.sharedWriters) {
            await first;
            return;
          }
          // Seqs are assigned after the log's own checks: wait for the call, not a time.
          await until(() => heard.length > 0 || undefined, 'onSequenced');
          assert.deepEqual(heard, [2]);
          // A write conditional on the head right behind it lands right behind it.
          const behind = log.append('s_seq', events(1), undefined, { ifHead: 4 });
          assert.deepEqual(await first, [2, 3]);
          assert.deepEqual(await behind, [4]);
          await rejectsWith(log.append('s_seq', events(1), undefined, { ifHead: 4, onSequenced: (seq) => heard.push(seq) }), 'conflict');
          assert.deepEqual(heard, [2], 'a refused append is never sequenced');
        }));
    });

    describe('delete', () => {
      it('removes a session, its events and metadata; other sessions stay; a second delete finds none', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_del', { title: 'gone' }), events(3));
          await log.create(meta('s_keep'), events(2));
          await log.append('s_del', events(2, 'note', 3), { more: 1 });
          assert.equal(await log.delete('s_del'), true);
          assert.equal(await log.getMeta('s_del'), undefined);
          await rejectsWith(log.read('s_del'), 'not_found');
          await rejectsWith(log.head('s_del'), 'not_found');
          await rejectsWith(log.append('s_del', events(1)), 'not_found');
          assert.deepEqual((await log.list()).sessions.map((m) => m.sessionId), ['s_keep']);
          assert.deepEqual(seqs((await log.read('s_keep')).events), [0, 1]);
          assert.equal(await log.delete('s_del'), false);
        }));

      it('ends the session’s subscriptions with error', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_delsub'), events(2));
          const collector = new Collector();
          const sub = await log.subscribe('s_delsub', 0, collector.listener);
          await collector.reached(2);
          await log.delete('s_delsub');
          const end = await sub.ended;
          assert.equal(end.reason, 'error');
        }));

      it('takes the session out of the count and drops its checkpoint (an id made again starts with none)', () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_dc'), events(3));
          await log.create(meta('s_dk'), events(1));
          assert.equal(await log.putCheckpoint('s_dc', { seq: 3, state: 'folded' }), true);
          assert.equal(await log.count(), 2);
          assert.equal(await log.delete('s_dc'), true);
          assert.equal(await log.count(), 1);
          await rejectsWith(log.getCheckpoint('s_dc'), 'not_found');
          assert.equal(await log.delete('s_dc'), false);
          assert.equal(await log.count(), 1, 'a delete that finds none counts nothing');
          await log.create(meta('s_dc'), events(1));
          assert.equal(await log.getCheckpoint('s_dc'), undefined);
          assert.equal(await log.count(), 2);
        }));
    });

    describe('concurrency', () => {
      it('acknowledges concurrent appends from many sessions once each, with dense seqs', () =>
        withLog(factory, async (log) => {
          const ids = range(0, 32).map((i) => `s_c${String(i).padStart(2, '0')}`);
          await Promise.all(ids.map((id) => log.create(meta(id), [])));
          const acked = new Map<string, number[]>(ids.map((id) => [id, []]));
          await Promise.all(
            ids.flatMap((id) =>
              range(0, 20).map(async (i) => {
                const got = await log.append(id, events(1 + (i % 3), 'note', i));
                acked.get(id)!.push(...got);
              }),
            ),
          );
          for (const id of ids) {
            const head = await log.head(id);
            assert.equal(head, range(0, 20).reduce((n, i) => n + 1 + (i % 3), 0));
            assert.deepEqual([...acked.get(id)!].sort((a, b) => a - b), range(0, head));
            assert.deepEqual(seqs((await log.read(id)).events), range(0, head));
          }
        }));
    });

    describe('subscribe', () => {
      it('catches up in batches, then follows live appends', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_s'), events(100));
          const sizes: number[] = [];
          const collector = new Collector();
          const sub = await log.subscribe('s_s', 10, async (batch) => {
            sizes.push(batch.length);
            await collector.listener(batch);
          }, { batchSize: 16 });
          await log.append('s_s', events(5, 'note', 100));
          await log.append('s_s', events(3, 'note', 105));
          await collector.reached(108);
          assert.deepEqual(seqs(collector.received), range(10, 108));
          assert.ok(sizes.every((n) => n <= 16));
          assert.deepEqual(collector.received[0]!.data, { i: 10, text: 'event 10' });
          sub.close();
          assert.deepEqual(await sub.ended, { reason: 'closed', next: 108 });
        }));

      it('clamps from past the head to the head', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_h'), events(3));
          const collector = new Collector();
          const sub = await log.subscribe('s_h', 1000, collector.listener);
          await log.append('s_h', events(2, 'note', 3));
          await collector.reached(5);
          assert.deepEqual(seqs(collector.received), [3, 4]);
          sub.close();
          assert.equal((await sub.ended).next, 5);
        }));

      it('has no gap or duplicate while appends race the hand-off (50 runs)', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          for (let run = 0; run < 50; run++) {
            const id = `s_race${String(run).padStart(2, '0')}`;
            await log.create(meta(id), events(run % 7));
            const writers = range(0, 4).map(async (w) => {
              for (let i = 0; i < 8; i++) {
                await log.append(id, events(1 + ((run + w + i) % 3)));
                if ((run + i) % 2) await tick();
              }
            });
            // Subscribe at a varying moment of the race, with a listener of varying pace.
            for (let i = 0; i < run % 5; i++) await tick();
            const from = run % 4 === 0 ? 0 : run % 4 === 1 ? 1000 : run % 3;
            const collector = new Collector(run % 2 ? tick : () => Promise.resolve());
            const sub = await log.subscribe(id, from, collector.listener, { batchSize: 1 + (run % 4) });
            await Promise.all(writers);
            const head = await log.head(id);
            await collector.reached(head);
            sub.close();
            const got = seqs(collector.received);
            const start = got[0] ?? head;
            // The head at subscribe time lies between the initial count and the final head.
            assert.ok(start <= from && start >= Math.min(from, run % 7), `run ${run}: from ${from} started at ${start}`);
            assert.deepEqual(got, range(start, head), `run ${run}`);
            assert.deepEqual(await sub.ended, { reason: 'closed', next: head });
          }
        }));

      it('ends with overflow and the resume point when the listener never finishes', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_o'), events(5));
          let delivered = 0;
          const sub = await log.subscribe('s_o', 0, (batch) => {
            delivered += batch.length;
            return new Promise<void>(() => undefined);
          }, { maxPending: 50 });
          // Bounded: it gives up once more than maxPending wait, instead of buffering on.
          const appended = await appendUntilEnded(sub, 5, 1000, async () => {
            await log.append('s_o', events(10));
            return 10;
          });
          assert.ok(appended <= 5 + 50 + 20, `still subscribed after ${appended} events`);
          const end = await sub.ended;
          assert.equal(end.reason, 'overflow');
          assert.equal(end.next, delivered);
          assert.ok(end.next <= 5);
          // Ended: further appends neither fail nor reach the listener.
          const before = delivered;
          await log.append('s_o', events(100));
          await tick();
          assert.equal(delivered, before);
          // A resubscription from `next` misses nothing.
          const collector = new Collector();
          const again = await log.subscribe('s_o', end.next, collector.listener);
          await collector.reached(appended + 100);
          assert.deepEqual(seqs(collector.received), range(end.next, appended + 100));
          again.close();
        }));

      it('cuts batches by bytes and ends with overflow once too many bytes wait', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          const big = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'note', data: { i, text: 'b'.repeat(1000) } }));
          await log.create(meta('s_bb'), big(10));
          let stuck = false;
          const collector = new Collector(() => (stuck ? new Promise<void>(() => undefined) : Promise.resolve()));
          const batches: number[][] = [];
          const sub = await log.subscribe('s_bb', 0, (batch) => {
            batches.push(seqs(batch));
            return collector.listener(batch);
          }, { maxBatchBytes: 3500, maxPending: 10_000, maxPendingBytes: 20_000 });
          // Catch-up in batches of three ~1 KB events.
          await collector.reached(10);
          assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
          // Then the listener hangs: live events pile up until about 20 KB of them wait.
          stuck = true;
          const appended = await appendUntilEnded(sub, 10, 200, async () => {
            await log.append('s_bb', big(5));
            await tick();
            return 5;
          });
          const end = await sub.ended;
          assert.equal(end.reason, 'overflow');
          assert.ok(appended <= 10 + 20 + 10, `ended after ${appended} events: by bytes, long before 10000 events`);
          assert.equal(end.next, batches.flat().at(-1)! + 1);
        }));

      it('ends with error when the listener throws, resuming at the failed batch', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_e'), events(10));
          const sub = await log.subscribe('s_e', 0, (batch) => {
            if (batch[0]!.seq >= 4) throw new Error('listener broke');
          }, { batchSize: 4 });
          const end: SubscriptionEnd = await sub.ended;
          assert.equal(end.reason, 'error');
          assert.equal(end.next, 4);
          assert.equal(end.reason === 'error' ? end.error.message : '', 'listener broke');
        }));

      it('delivers nothing after close and settles ended once', { timeout: HANG_GUARD_MS }, () =>
        withLog(factory, async (log) => {
          await log.create(meta('s_x'), events(3));
          let batches = 0;
          const sub = await log.subscribe('s_x', 0, () => {
            batches++;
          });
          sub.close();
          const after = batches;
          sub.close();
          await log.append('s_x', events(3));
          await tick();
          assert.equal(batches, after);
          assert.equal((await sub.ended).reason, 'closed');
        }));
    });

    describe('tokens', () => {
      it('stores token records and reads them back by id and in a list, apart from the caller’s objects', () =>
        withLog(factory, async (log) => {
          const scoped = token(2, { role: 'controller', sessions: ['s_a', 's_b'], expiresAt: 99_999 });
          const web = token(3, { id: 'web_0000000000000003', parent: scoped.id });
          for (const t of [token(1), scoped, web]) await log.tokens.put(t);
          scoped.sessions!.push('s_c');
          assert.deepEqual(await log.tokens.get('tok_0000000000000002'), token(2, { role: 'controller', sessions: ['s_a', 's_b'], expiresAt: 99_999 }));
          assert.equal(await log.tokens.get('tok_00000000000000ff'), undefined);
          assert.deepEqual((await log.tokens.list()).map((t) => t.id), ['tok_0000000000000001', 'tok_0000000000000002', 'web_0000000000000003']);
          const listed = await log.tokens.list();
          listed[0]!.name = 'changed';
          assert.equal((await log.tokens.get('tok_0000000000000001'))!.name, 't1');
        }));

      it('refuses a second record with the same id and keeps the first', () =>
        withLog(factory, async (log) => {
          await log.tokens.put(token(1));
          await rejectsWith(log.tokens.put(token(1, { name: 'other', hash: 'f'.repeat(64) })), 'exists');
          assert.equal((await log.tokens.get('tok_0000000000000001'))!.name, 't1');
          // Two puts of one id at once: exactly one wins.
          const raced = await Promise.allSettled([log.tokens.put(token(2)), log.tokens.put(token(2, { name: 'b' }))]);
          assert.deepEqual(raced.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
        }));

      it('deletes records by id and says how many there were', () =>
        withLog(factory, async (log) => {
          for (const n of [1, 2, 3]) await log.tokens.put(token(n));
          assert.equal(await log.tokens.delete(['tok_0000000000000001', 'tok_0000000000000003', 'tok_00000000000000ff']), 2);
          assert.equal(await log.tokens.delete([]), 0);
          assert.deepEqual((await log.tokens.list()).map((t) => t.id), ['tok_0000000000000002']);
          assert.equal(await log.tokens.get('tok_0000000000000001'), undefined);
        }));

      it('refuses malformed records and ids with invalid, writing nothing', () =>
        withLog(factory, async (log) => {
          const bad: unknown[] = [
            null,
            { ...token(1), id: 'tok_xyz' },
            { ...token(1), hash: 'short' },
            { ...token(1), role: 'owner' },
            { ...token(1), sessions: 's_a' },
            { ...token(1), expiresAt: -1 },
            { ...token(1), parent: 'nope' },
          ];
          for (const record of bad) await rejectsWith(log.tokens.put(record as StoredToken), 'invalid');
          await rejectsWith(log.tokens.get('../etc'), 'invalid');
          await rejectsWith(log.tokens.delete(['tok_1']), 'invalid');
          assert.deepEqual(await log.tokens.list(), []);
        }));

      it('refuses token calls once closed', async () => {
        const log = await factory();
        await log.close();
        await rejectsWith(log.tokens.put(token(1)), 'closed');
        await rejectsWith(log.tokens.get('tok_0000000000000001'), 'closed');
        await rejectsWith(log.tokens.list(), 'closed');
      });
    });

    describe('close', () => {
      it('finishes in-flight appends, then refuses new calls and ends subscriptions', async () => {
        const log = await factory();
        await log.create(meta('s_z'), []);
        const sub = await log.subscribe('s_z', 0, () => undefined);
        const inFlight = range(0, 20).map((i) => log.append('s_z', events(1, 'note', i)));
        await log.close();
        const acked = (await Promise.all(inFlight)).flat().sort((a, b) => a - b);
        assert.deepEqual(acked, range(0, 20));
        assert.equal((await sub.ended).reason, 'closed');
        await rejectsWith(log.append('s_z', events(1)), 'closed');
        await rejectsWith(log.read('s_z'), 'closed');
        await log.close();
      });
    });
  });
}
