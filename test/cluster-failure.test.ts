/**
 * The shared log's failure modes: a daemon given a bad or unreachable database refuses to
 * start and says why (never the password); a daemon cut off from its database keeps
 * running, answers with StorageFailure, and once the database is back carries on, its
 * followers caught up with what other daemons wrote meanwhile, with no gap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DaemonStatus, ErrorCode, SessionGet, SessionPrompt, type Event } from '../protocol/index.js';
import { readLog, runAgentd, tempHome, type TestDaemon } from './support/daemon.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { allEvents, assertLogInvariants, createSession, ofType, settle, waitForEvent } from './support/agent.js';
import { startCluster, waitForDaemonLog, type Cluster } from './support/cluster.js';
import { startTcpLink, type TcpLink } from './support/tcp-link.js';
import { DaemonLink, socketConnector } from '../clients/lib/index.js';
import { until } from './support/until.js';
import { withFixture } from './support/fixture.js';

async function rejectsWithCode(promise: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as { code?: number }).code, code, String(error));
    return true;
  });
}

/**
 * Two daemons on one database: B reaches it directly, A through a TCP link the test can
 * cut (a partition between A and its database). Disposed whatever happens.
 */
async function withPartitionableDaemon(body: (setup: { cluster: Cluster; link: TcpLink; a: TestDaemon; b: TestDaemon }) => Promise<void>): Promise<void> {
  const cluster = await startCluster(1, { leaseMs: 1500 });
  const db = new URL(cluster.url);
  const link = await startTcpLink(db.hostname, Number(db.port));
  try {
    const viaLink = new URL(cluster.url);
    viaLink.port = String(link.port);
    const a = await cluster.add({ AGENTD_LOG: viaLink.toString() });
    await body({ cluster, link, a, b: cluster.daemons[0]! });
  } finally {
    await cluster.dispose();
    await link.close();
  }
}

describe('shared log failures', () => {
  it('refuses to start on a bad AGENTD_LOG, an unreachable database or a bad lease, saying why and never the password', async () => {
    const layout = tempHome();
    const cases: Array<{ env: Record<string, string>; says: RegExp }> = [
      { env: { AGENTD_LOG: 'mysql://root:hunter2-secret@127.0.0.1/x' }, says: /AGENTD_LOG must be a postgres:\/\/ URL/ },
      { env: { AGENTD_LOG: 'postgres://agentd:hunter2-secret@127.0.0.1:1/agentd' }, says: /cannot open the session log on PostgreSQL: .*ECONNREFUSED/ },
      { env: { AGENTD_LOG: 'postgres://agentd:hunter2-secret@127.0.0.1:1/agentd', AGENTD_LEASE_MS: 'soon' }, says: /AGENTD_LEASE_MS must be an integer/ },
    ];
    for (const { env, says } of cases) {
      const result = await runAgentd(layout, ['daemon'], { env });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, says);
      assert.equal(result.stdout, '');
      assert.ok(!result.stderr.includes('hunter2'), `the password leaked: ${result.stderr}`);
    }
  });

  it('never shows the database password: not in status, the log, daemon.log, or anything in the sandbox', async () => {
    const marker = `pw-${Math.random().toString(36).slice(2)}-secret`;
    await withFixture(startCluster(0), async (cluster) => {
      // The test server trusts loopback, so the password is carried along and never checked.
      const withPassword = new URL(cluster.url);
      withPassword.password = marker;
      const daemon = await cluster.add({ AGENTD_LOG: withPassword.toString() });
      const client = await daemon.client();
      const sessionId = await createSession(client);
      cluster.emulator.script([
        reply.toolUse({ name: 'bash', input: { command: 'env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr "\\0" "\\n"' } }),
        reply.text('looked around'),
      ]);
      await client.request(SessionPrompt, { sessionId, content: 'look for secrets' });
      const events = await settle(client, sessionId);
      assert.match(JSON.stringify(ofType(events, 'tool.result')), /PATH=/, 'the sandbox did list its environment');
      const status = await client.request(DaemonStatus, {});
      assert.match(status.log.location, /\*\*\*/);
      for (const [where, text] of [
        ['session log', JSON.stringify(events)],
        ['daemon/status', JSON.stringify(status)],
        ['daemon.log', readLog(daemon.layout)],
        ['daemon stdout/stderr', daemon.stdout() + daemon.stderr()],
        ['the model requests', JSON.stringify(cluster.emulator.requests.map((r) => r.body))],
      ] as const) {
        assert.ok(!text.includes(marker), `the database password showed up in ${where}`);
      }
    });
  });

  it('hands a turn over when its holder loses the database mid-turn, and the holder writes nothing when it is back', async () => {
    await withPartitionableDaemon(async ({ cluster, link, a, b }) => {
      const ca = await a.client();
      const cb = await b.client();
      const idB = (await cb.request(DaemonStatus, {})).daemonId;
      const sessionId = await createSession(ca);
      cluster.emulator.script([reply.text('the reply A cannot store', { delayMs: 800 }), reply.text('the reply B stores')]);
      const asked = cluster.emulator.requests.length;
      await ca.request(SessionPrompt, { sessionId, content: 'answer across an outage' });
      await cluster.emulator.waitForRequests(asked + 1);
      link.cut();
      // A cannot renew; once its lease expires B takes the turn over.
      await waitForEvent(cb, sessionId, (e) => e.type === 'turn.completed', 30_000);
      link.restore();
      const events = await settle(cb, sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.deepEqual(ofType(events, 'assistant.message').map((e) => (e.data.content as Array<{ text?: string }>)[0]?.text), ['the reply B stores']);
      assert.equal(ofType(events, 'harness.woke')[0]?.data.daemon, idB);
      // A's runner gave up when its reply could not be stored; back on the database, A adds nothing.
      await waitForDaemonLog(a, /session runner failed/);
      await until(() => ca.request(SessionGet, { sessionId }).then((info) => info.status === 'idle', () => false), 'A to serve the session again once the database is back');
      assert.deepEqual(await allEvents(cb, sessionId), events);
    });
  });

  it('keeps running without its database, answers StorageFailure, and catches up once it is back', async () => {
    await withPartitionableDaemon(async ({ cluster, link, a, b }) => {
      const ca = await a.client();
      const cb = await b.client();
      const sessionId = await createSession(ca);
      // Followed on A the way `agentd log --follow` does: a dropped subscription resumes from its cursor.
      const followedOnA: Event[] = [];
      const linkToA = new DaemonLink({ clientName: 'follower', connector: socketConnector({ layout: a.layout, autostart: false, clientName: 'follower' }) });
      const following = linkToA.follow(sessionId, 0, { onEvents: (events) => followedOnA.push(...events) });
      try {
        link.cut();
        await rejectsWithCode(ca.request(SessionPrompt, { sessionId, content: 'while cut off' }), ErrorCode.StorageFailure);
        await rejectsWithCode(ca.request(SessionGet, { sessionId }), ErrorCode.StorageFailure);
        const status = await ca.request(DaemonStatus, {});
        assert.equal(status.counts.sessions, null);
        assert.match(status.logError ?? '', /storage failure/);
        // Meanwhile B works on the session.
        cluster.emulator.script([reply.text('written by B while A was cut off')]);
        await cb.request(SessionPrompt, { sessionId, content: 'via B' });
        const during = await settle(cb, sessionId);

        link.restore();
        await until(() => followedOnA.length >= during.length, 'the follower on A to catch up');
        assert.deepEqual(followedOnA, during, 'the follower on A got what B wrote while A was cut off, in order, once each');

        cluster.emulator.script([reply.text('A is back')]);
        await ca.request(SessionPrompt, { sessionId, content: 'via A again' });
        const events = await settle(ca, sessionId);
        assert.deepEqual(assertLogInvariants(events), []);
        assert.equal(ofType(events, 'turn.completed').length, 2);
        assert.ok(ofType(events, 'user.message').every((e) => e.data.content !== 'while cut off'), 'the refused prompt left nothing behind');
        await until(() => followedOnA.length >= events.length, 'the follower on A to follow on');
        assert.deepEqual(followedOnA, await allEvents(cb, sessionId));
        following.dispose();
      } finally {
        await linkToA.close();
      }
    });
  });
});
