/**
 * What one client may hold of the daemon: requests in flight, subscriptions, the bytes
 * of a page, the bytes waiting for a subscriber that stopped reading, vault entries.
 * Each limit ends in a stable error code or a drop with a cursor, never in memory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../protocol/index.js';
import { bigSession } from './support/abuse.js';
import { workspace as makeWorkspace } from './support/agent.js';
import { RawConnection, startDaemon, type TestDaemon } from './support/daemon.js';
import { initialize } from './fuzz/replay.js';

type Message = Record<string, unknown>;
const errorOf = (m: Message) => m.error as { code: number; data?: { limit?: string; max?: number } } | undefined;

describe('per-connection limits', () => {
  let daemon: TestDaemon;
  let workspace: string;
  let sessionId: string;
  const open = async () => {
    const conn = await RawConnection.open(daemon.layout.socket);
    await initialize(conn);
    return conn;
  };
  before(async () => {
    daemon = await startDaemon();
    workspace = makeWorkspace();
    // About 2 MiB of events in prompts of 256 KiB.
    sessionId = await bigSession(daemon.layout, workspace, 2 * 1024 * 1024);
  });
  after(() => daemon.dispose());

  it('refuses the 65th request in flight with LimitExceeded, refuses a reused id, and cancels the others', async () => {
    const conn = await open();
    const head = ((await conn.request(1, 'session/get', { sessionId })).result as { headSeq: number }).headSeq;
    // Long polls past the head stay in flight until cancelled.
    for (let id = 100; id < 164; id++) conn.send({ id, method: 'session/events', params: { sessionId, from: head + 1000, waitMs: 60_000 } });
    conn.send({ id: 164, method: 'daemon/status' });
    const refused = await conn.next((m) => m.id === 164);
    assert.equal(errorOf(refused)?.code, ErrorCode.LimitExceeded);
    assert.deepEqual(errorOf(refused)?.data, { limit: 'requestsInFlight', max: 64 });
    for (let id = 100; id < 164; id++) conn.send({ method: '$/cancelRequest', params: { id } });
    for (let id = 100; id < 164; id++) assert.equal(errorOf(await conn.next((m) => m.id === id))?.code, ErrorCode.RequestCancelled);
    // Room again; an id still in flight may not be reused.
    conn.send({ id: 200, method: 'session/events', params: { sessionId, from: head + 1000, waitMs: 60_000 } });
    conn.send({ id: 200, method: 'daemon/status' });
    assert.equal(errorOf(await conn.next((m) => m.id === 200))?.code, ErrorCode.InvalidRequest);
    conn.send({ method: '$/cancelRequest', params: { id: 200 } });
    await conn.next((m) => m.id === 200 && errorOf(m)?.code === ErrorCode.RequestCancelled);
    assert.equal((await conn.request(201, 'daemon/status')).error, undefined);
    conn.close();
  });

  it('refuses the 65th subscription of a connection with LimitExceeded', async () => {
    const conn = await open();
    const head = ((await conn.request(1, 'session/get', { sessionId })).result as { headSeq: number }).headSeq;
    // 64 at once (as many as may be in flight): all are counted before any is open.
    for (let id = 2; id < 66; id++) conn.send({ id, method: 'session/subscribe', params: { sessionId, from: head } });
    const replies = await Promise.all(Array.from({ length: 64 }, (_, i) => conn.next((m) => m.id === i + 2)));
    assert.deepEqual(replies.filter((m) => m.error), []);
    const refused = await conn.request(66, 'session/subscribe', { sessionId, from: head });
    assert.equal(errorOf(refused)?.code, ErrorCode.LimitExceeded);
    assert.deepEqual(errorOf(refused)?.data, { limit: 'subscriptions', max: 64 });
    // Another connection has its own allowance.
    const other = await open();
    assert.ok((await other.request(2, 'session/subscribe', { sessionId, from: head })).result);
    other.close();
    conn.close();
  });

  it('cuts a session/events page at about 512 KiB and says where to read on', async () => {
    const conn = await open();
    const reply = await conn.request(1, 'session/events', { sessionId, from: 0 });
    const page = reply.result as { events: Message[]; next?: number; headSeq: number };
    const bytes = JSON.stringify(page.events).length;
    assert.ok(bytes <= 512 * 1024 + 300 * 1024, `a page of ${bytes} bytes`);
    assert.ok(page.next !== undefined && page.next < page.headSeq, 'next names the rest');
    let seen = page.events.length;
    for (let from: number | undefined = page.next, id = 2; from !== undefined; id++) {
      const more = (await conn.request(id, 'session/events', { sessionId, from })).result as { events: Message[]; next?: number };
      seen += more.events.length;
      from = more.next;
    }
    assert.equal(seen, page.headSeq);
    conn.close();
  });

  it('drops a subscriber that stopped reading once 4 MiB wait for it, with the cursor to resume from', async () => {
    const conn = await open();
    const writer = await open();
    const head = ((await conn.request(1, 'session/get', { sessionId })).result as { headSeq: number }).headSeq;
    const subscribed = await conn.request(2, 'session/subscribe', { sessionId, from: head });
    const { subscriptionId } = subscribed.result as { subscriptionId: string };
    conn.stopReading();
    // Live events of 1 MiB each: the socket holds one batch, the rest waits in the daemon until it gives up.
    const text = 'z'.repeat(1024 * 1024 - 100);
    for (let i = 0; i < 8; i++) assert.equal((await writer.request(10 + i, 'session/prompt', { sessionId, content: text })).error, undefined);
    conn.resumeReading();
    const dropped = await conn.next((m) => m.method === 'session/subscriptionDropped');
    const params = dropped.params as { subscriptionId: string; next: number; reason: string };
    assert.equal(params.subscriptionId, subscriptionId);
    assert.match(params.reason, /too slow/);
    const delivered = conn.messages.filter((m) => m.method === 'session/event').flatMap((m) => (m.params as { events: Array<{ seq: number }> }).events.map((e) => e.seq));
    assert.equal(params.next, delivered.length > 0 ? delivered.at(-1)! + 1 : head, 'next follows the last event delivered');
    // Resubscribing from `next` misses nothing.
    const again = await conn.request(3, 'session/subscribe', { sessionId, from: params.next });
    assert.ok(again.result);
    writer.close();
    conn.close();
  });

  it('refuses a 257th vault entry with LimitExceeded, and still replaces existing ones', async () => {
    const conn = await open();
    for (let i = 0; i < 256; i++) assert.equal((await conn.request(i, 'vault/set', { name: `K${i}`, value: `value-${i}-long` })).error, undefined);
    const refused = await conn.request(300, 'vault/set', { name: 'ONE_MORE', value: 'value-one-more' });
    assert.equal(errorOf(refused)?.code, ErrorCode.LimitExceeded);
    assert.deepEqual(errorOf(refused)?.data, { limit: 'vaultEntries', max: 256 });
    assert.equal((await conn.request(301, 'vault/set', { name: 'K0', value: 'value-replaced' })).error, undefined);
    conn.close();
  });
});
