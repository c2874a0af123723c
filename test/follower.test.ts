/**
 * The one session follower (clients/lib/follower.ts) on the one link (clients/lib/link.ts),
 * against the real daemon: it resumes from its cursor after the daemon is killed and
 * started again, and after the daemon drops it for reading too slowly, with every event
 * once and in order.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect, DaemonLink, socketConnector, type AgentdClient } from '../clients/lib/index.js';
import { AgentdError, DaemonStatus, ErrorCode, SessionCreate, SessionGet, SessionPrompt, type Event } from '../protocol/index.js';
import { allEvents } from './support/agent.js';
import { runAgentd, startParkingDaemon, tempHome } from './support/daemon.js';
import { tempDir } from './support/temp.js';
import { until } from './support/until.js';

const workspace = () => tempDir('agentd-ws-');

function assertDense(events: Event[], from: number, to: number): void {
  assert.deepEqual(
    events.map((e) => e.seq),
    Array.from({ length: to - from }, (_, i) => from + i),
  );
}

/**
 * A relay in front of the daemon's socket whose daemon-to-client direction the test can
 * stop reading: the daemon then sees a subscriber that does not keep up.
 */
async function startRelay(target: string) {
  const path = join(tempDir('agentd-relay-'), 'relay.sock');
  const upstreams = new Set<Socket>();
  let tail = '';
  let sawDrop = false;
  const server = createServer((client) => {
    const upstream = netConnect(target);
    upstreams.add(upstream);
    for (const s of [client, upstream]) s.on('error', () => undefined);
    upstream.on('data', (d: Buffer) => {
      const text = tail + d.toString('latin1');
      sawDrop ||= text.includes('session/subscriptionDropped');
      tail = text.slice(-64);
    });
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => (upstreams.delete(upstream), client.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  chmodSync(path, 0o600); // clients trust only a socket of their own, mode 0600
  return {
    path,
    pause: () => upstreams.forEach((s) => s.pause()),
    resume: () => upstreams.forEach((s) => s.resume()),
    sawDrop: () => sawDrop,
    close: () => new Promise<void>((resolve) => (upstreams.forEach((s) => s.destroy()), server.close(() => resolve()))),
  };
}

describe('session follower', () => {
  it('resumes after the daemon is killed and started again: every event once, in order', async () => {
    const layout = tempHome();
    const writer = await connect({ layout, clientName: 'writer' });
    const { sessionId } = await writer.request(SessionCreate, { workspace: workspace() });
    for (let i = 0; i < 20; i++) await writer.request(SessionPrompt, { sessionId, content: `a${i}` });
    const pid = (await writer.request(DaemonStatus, {})).pid;
    writer.close();
    // Reconnections nobody waits for do not start a daemon: the test starts the next one.
    const link = new DaemonLink({ clientName: 'follower', connector: socketConnector({ layout, clientName: 'follower' }), autostartInBackground: false });
    const seen: Event[] = [];
    let lost = 0;
    link.onState((s) => void (s.kind === 'connecting' && s.attempt > 1 && lost++));
    const follower = link.follow(sessionId, 0, { onEvents: (events) => seen.push(...events) });
    let again: AgentdClient | undefined;
    try {
      await until(() => seen.length >= 21, 'catch-up');
      process.kill(pid, 'SIGKILL');
      await until(() => lost > 0, 'the link noticed');
      again = await connect({ layout, clientName: 'writer2', explicit: true }); // starts the daemon again
      assert.notEqual((await again.request(DaemonStatus, {})).pid, pid);
      for (let i = 0; i < 20; i++) await again.request(SessionPrompt, { sessionId, content: `b${i}` });
      await until(async () => (await again!.request(SessionGet, { sessionId })).status === 'idle', 'the turns settled');
      const log = await allEvents(again, sessionId);
      await until(() => seen.length >= log.length, 'events after the restart');
      assertDense(seen, 0, log.length);
      assert.deepEqual(seen, log, 'exactly the log');
      assert.equal(follower.next, log.length);
    } finally {
      follower.dispose();
      await link.close();
      again?.close();
      // `agentd stop` returns once the daemon process is gone (the data dir goes at exit).
      assert.equal((await runAgentd(layout, ['stop'])).code, 0);
    }
  });

  it('resubscribes from `next` when the daemon drops it for falling behind: every event once, in order', async () => {
    const daemon = await startParkingDaemon();
    const relay = await startRelay(daemon.layout.socket);
    const link = new DaemonLink({
      clientName: 'slow follower',
      connector: socketConnector({ layout: { ...daemon.layout, socket: relay.path }, autostart: false, clientName: 'slow follower' }),
    });
    try {
      const writer = await daemon.client({ name: 'writer' });
      const sessionId = await daemon.park(writer);
      const seen: Event[] = [];
      let caughtUp = 0;
      const follower = link.follow(sessionId, 0, { onEvents: (events) => seen.push(...events), onCaughtUp: () => caughtUp++ });
      await follower.ready;
      relay.pause();
      // Far more than the daemon keeps waiting for one subscriber (1024 events, 4 MB).
      const payload = 'z'.repeat(4096);
      for (let sent = 0; sent < 1500; sent += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, i) => writer.request(SessionPrompt, { sessionId, content: `${sent + i} ${payload}` })));
      }
      relay.resume();
      const log = await allEvents(writer, sessionId);
      await until(() => seen.length >= log.length, 'the follower to catch up after the drop');
      assert.ok(relay.sawDrop(), 'the daemon dropped the subscription');
      assert.ok(caughtUp >= 2, 'it subscribed again');
      assertDense(seen, 0, log.length);
      assert.deepEqual(seen, log);
      follower.dispose();
    } finally {
      await link.close();
      await relay.close();
      await daemon.dispose();
    }
  });

  it('ends, saying why, when the session does not exist', async () => {
    const daemon = await startParkingDaemon();
    const link = new DaemonLink({ clientName: 'follower', connector: socketConnector({ layout: daemon.layout, autostart: false, clientName: 'follower' }) });
    try {
      const ended = await new Promise<AgentdError>((resolve) => link.follow('s_0000000000nosuchsess', 0, { onEvents: () => undefined, onEnded: resolve }));
      assert.equal(ended.code, ErrorCode.SessionNotFound);
    } finally {
      await link.close();
      await daemon.dispose();
    }
  });
});
