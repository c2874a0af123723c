/**
 * Two daemons on one PostgreSQL database, each listening on wss://: a token made on one
 * is accepted by the other (tokens live in the database), a revocation on one ends the
 * connections on the other, and a session created through A is followed and approved
 * through B by a client whose token is scoped to that session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PermissionAnswer, SessionAttach, SessionPrompt, type Event, type PermissionQuestion } from '../protocol/index.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { createSession, settle } from './support/agent.js';
import { runAgentd } from './support/daemon.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { bearer, createToken, httpsJson, openRaw, remoteClient, type ListeningDaemon } from './support/remote.js';
import { until } from './support/until.js';
import { startTcpLink } from './support/tcp-link.js';

describe('two listening daemons on one PostgreSQL log', () => {
  let cluster: Cluster;
  let a: ListeningDaemon;
  let b: ListeningDaemon;
  before(async () => {
    cluster = await startCluster(2, { listen: true, leaseMs: 2000 });
    [a, b] = cluster.daemons as [ListeningDaemon, ListeningDaemon];
  });
  after(async () => {
    await cluster?.dispose();
  });

  it('says both are ready, with the lease loop running', async () => {
    for (const daemon of [a, b]) {
      const ready = await until(async () => {
        const answer = await httpsJson(`${daemon.origin}/readyz`, { ca: daemon.cert.pem });
        return answer.status === 200 && answer;
      }, 'readyz');
      assert.deepEqual(JSON.parse(ready.body), { ready: true, checks: { log: 'ok', leases: 'running' } });
    }
  });

  it('says a daemon cut off from the database is not ready (naming no host), and refuses new connections with 503 until it is back', async () => {
    const db = new URL(cluster.url);
    const link = await startTcpLink(db.hostname, Number(db.port));
    try {
      const viaLink = new URL(cluster.url);
      viaLink.port = String(link.port);
      const c = (await cluster.add({ AGENTD_LOG: viaLink.toString() })) as ListeningDaemon;
      const token = await createToken(c.layout, ['--observer', '--name', 'during-partition']);
      const readyz = () => httpsJson(`${c.origin}/readyz`, { ca: c.cert.pem });
      link.cut();
      const down = await until(async () => {
        const answer = await readyz();
        return answer.status === 503 && answer;
      }, 'readyz to say not ready');
      assert.equal(JSON.parse(down.body).checks.log, 'unreachable');
      assert.ok(!down.body.includes(String(link.port)) && !down.body.includes(db.hostname), `no detail of the database: ${down.body}`);
      assert.equal((await httpsJson(`${c.origin}/healthz`, { ca: c.cert.pem })).status, 200, 'the process itself is alive');
      const refused = await openRaw(c, bearer(token)).then(() => 'accepted', (error: Error) => error.message);
      assert.match(refused, /refused: 503 .*"code":-33004.*cannot check the token now: the session log does not answer/);
      assert.ok(!refused.includes(token) && !refused.includes(String(link.port)), refused);
      link.restore();
      await until(async () => (await readyz()).status === 200, 'readyz to say ready again');
      (await openRaw(c, bearer(token))).close();
    } finally {
      await link.close();
    }
  });

  it('accepts a token made on A at B, and a revocation on A ends its connections on B', async () => {
    const token = await createToken(a.layout, ['--observer', '--name', 'shared']);
    const onB = await openRaw(b, bearer(token));
    const listed = JSON.parse((await runAgentd(b.layout, ['token', 'list', '--json'])).stdout) as { tokens: Array<{ id: string; name: string }> };
    const id = listed.tokens.find((t) => t.name === 'shared')!.id;
    assert.equal((await runAgentd(a.layout, ['token', 'revoke', id])).code, 0);
    assert.deepEqual(await onB.waitClosed(), { code: 4001, reason: 'token revoked' });
    const again = await openRaw(b, bearer(token)).then(
      () => 'accepted',
      (error: Error) => error.message,
    );
    assert.match(again, /refused: 401/);
  });

  it('lets a client of B, scoped to a session created through A, follow it live and answer its question first', async () => {
    const creator = await remoteClient(a, await createToken(a.layout, ['--controller', '--name', 'creator']), { name: 'creator' });
    const sessionId = await createSession(creator, { title: 'made on A', permissions: { default: 'ask' } });
    const questions: PermissionQuestion[] = [];
    let answerOnB!: (decision: 'allow' | 'deny') => void;
    const scoped = await createToken(b.layout, ['--controller', '--session', sessionId, '--name', 'approver']);
    const approver = await remoteClient(b, scoped, {
      name: 'approver',
      onPermissionRequest: (question) =>
        new Promise((resolve) => {
          questions.push(question);
          answerOnB = (decision) => resolve({ decision });
        }),
    });
    await approver.request(SessionAttach, { sessionId, role: 'controller' });
    const seen: Event[] = [];
    await approver.subscribe(sessionId, 0, { onEvents: (events) => seen.push(...events) });

    cluster.emulator.script([reply.toolUse({ name: 'write_file', input: { path: 'from-b.txt', content: 'approved on B' } }), reply.text('written')]);
    await creator.request(SessionPrompt, { sessionId, content: 'write it' });
    await until(() => questions.length === 1, 'the question to reach B');
    assert.equal(questions[0]!.sessionId, sessionId);
    answerOnB('allow');
    const all = await settle(creator, sessionId);
    const resolved = all.find((e) => e.type === 'permission.resolved')!;
    assert.equal(resolved.data.decision, 'allow');
    assert.match(String(resolved.data.by), /approver/);
    // A later answer from A's side is too late: first answer wins.
    const late = await creator.request(PermissionAnswer, { sessionId, toolUseId: String(resolved.data.toolUseId), decision: 'deny' }).then(
      () => 'answered',
      (error: { code?: number }) => error.code,
    );
    assert.equal(late, -33014);
    await until(() => seen.length === all.length, 'B’s follower to have every event');
    assert.deepEqual(seen.map((e) => e.seq), all.map((e) => e.seq));
    creator.close();
    approver.close();
  });
});
