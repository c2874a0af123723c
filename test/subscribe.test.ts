/** Subscriptions over the real socket: no gap or duplicate under races, slow and vanished clients (reconnects: follower.test.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect as netConnect } from 'node:net';
import { DaemonStatus, SessionCreate, SessionEvents, SessionPrompt, type Event } from '../protocol/index.js';
import { startParkingDaemon } from './support/daemon.js';
import { tempDir } from './support/temp.js';
import { until } from './support/until.js';
import { withFixture } from './support/fixture.js';

const workspace = () => tempDir('agentd-ws-');

function assertDense(events: Event[], from: number, to: number): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    Array.from({ length: to - from }, (_, i) => from + i),
  );
}

describe('session/subscribe', () => {
  it('delivers catch-up then live with no gap and no duplicate while others append (40 rounds)', async () => {
    await withFixture(startParkingDaemon(), async (daemon) => {
      const writer = await daemon.client({ name: 'writer' });
      const reader = await daemon.client({ name: 'reader' });
      for (let round = 0; round < 40; round++) {
        const sessionId = await daemon.park(writer);
        const parkedHead = (await writer.request(SessionEvents, { sessionId, from: 0, limit: 1 })).headSeq;
        const before = round % 7;
        for (let i = 0; i < before; i++) await writer.request(SessionPrompt, { sessionId, content: `pre ${i}` });
        const total = parkedHead + before + 30;
        const from = round % 3 === 0 ? 0 : Math.floor(Math.random() * (parkedHead + before + 1));
        const seen: Event[] = [];
        const appending = Promise.all(
          Array.from({ length: 30 }, (_, i) => writer.request(SessionPrompt, { sessionId, content: `live ${i}` })),
        );
        const sub = await reader.subscribe(sessionId, from, { onEvents: (events) => seen.push(...events) });
        await appending;
        await until(() => seen.length >= total - from, `round ${round} events`);
        await sub.unsubscribe();
        assertDense(seen, from, total);
        const stored = await reader.request(SessionEvents, { sessionId, from });
        assert.deepEqual(seen, stored.events, 'byte-identical to what session/events returns');
      }
    });
  });

  it('frees the subscription of a client that vanishes mid-subscribe', async () => {
    await withFixture(startParkingDaemon(), async (daemon) => {
      const admin = await daemon.client();
      const { sessionId } = await admin.request(SessionCreate, { workspace: workspace() });
      const doomed = await daemon.client({ name: 'doomed' });
      await doomed.subscribe(sessionId, 0, { onEvents: () => undefined });
      assert.equal((await admin.request(DaemonStatus, {})).counts.subscriptions, 1);
      doomed.close();
      await until(async () => (await admin.request(DaemonStatus, {})).counts.subscriptions === 0, 'subscription freed');
      await admin.request(SessionPrompt, { sessionId, content: 'still fine' });
    });
  });

  it('drops a subscriber that never reads, with a resume cursor, while memory stays bounded and others carry on', async () => {
    // The daemon's heap is capped well below the volume that goes by: had it kept the
    // stuck client's events, it would die of out-of-memory instead of carrying on.
    const heapCapMb = 128;
    await withFixture(startParkingDaemon({ NODE_OPTIONS: `--max-old-space-size=${heapCapMb}` }), async (daemon) => {
      const writer = await daemon.client({ name: 'writer' });
      const follower = await daemon.client({ name: 'follower' });
      const sessionId = await daemon.park(writer);
      const parkedHead = (await writer.request(SessionEvents, { sessionId, from: 0, limit: 1 })).headSeq;
      // A raw client that subscribes and then stops reading its socket.
      const stuck = netConnect(daemon.layout.socket);
      await new Promise((r) => stuck.once('connect', r));
      const frame = (m: unknown) => {
        const body = JSON.stringify({ jsonrpc: '2.0', ...(m as object) });
        return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      };
      let heard = '';
      stuck.on('data', (chunk: Buffer) => (heard += chunk.toString('latin1')));
      stuck.write(frame({ id: 1, method: 'initialize', params: { protocolVersion: '1.0', clientInfo: { name: 'stuck' } } }));
      stuck.write(frame({ id: 2, method: 'session/subscribe', params: { sessionId, from: 0 } }));
      await until(() => heard.includes('"id":2'), 'the subscription to be answered');
      stuck.pause();
      let followed = 0;
      await follower.subscribe(sessionId, 0, { onEvents: (events) => (followed += events.length) });
      const payload = 'y'.repeat(8 * 1024);
      const count = 24_000; // ~190 MB of events in all: far more than any buffer may hold
      for (let sent = 0; sent < count; sent += 200) {
        await Promise.all(Array.from({ length: 200 }, (_, i) => writer.request(SessionPrompt, { sessionId, content: `${sent + i} ${payload}` })));
      }
      const status = await writer.request(DaemonStatus, {});
      assert.equal(status.counts.subscriptions, 1, 'only the reading follower is still subscribed');
      const volumeMb = (count * payload.length) / 1048576;
      assert.ok(volumeMb > heapCapMb, `${volumeMb.toFixed(0)} MB went by a daemon whose heap is capped at ${heapCapMb} MB`);
      assert.equal(daemon.proc.exitCode, null, 'the daemon is alive');
      await until(() => followed === parkedHead + count, 'the reading follower got everything');
      // The stuck client, once it reads again, finds the drop notice with where to resume.
      let text = '';
      stuck.on('data', (d) => (text += d));
      stuck.resume();
      await until(() => text.includes('session/subscriptionDropped'), 'drop notice');
      const next = Number(/"next":(\d+)/.exec(text.slice(text.indexOf('session/subscriptionDropped')))?.[1]);
      assert.ok(Number.isInteger(next) && next > 0 && next < parkedHead + count, `resume cursor ${next}`);
      stuck.destroy();
    });
  });
});
