/**
 * Several daemons, one set of sessions: real `agentd daemon` processes on separate data
 * dirs, sharing a PostgreSQL session log. Any daemon lists, reads, follows and prompts any
 * session; a session's harness runs where its lease is; when the holder dies (kill -9) or
 * is paused past its lease (SIGSTOP), another daemon takes the turn over, and the old one
 * can no longer write.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AgentdError,
  DaemonStatus,
  ErrorCode,
  PermissionAnswer,
  SessionAttach,
  SessionDeltaNotification,
  SessionGet,
  SessionInterrupt,
  SessionList,
  SessionPrompt,
  type Event,
} from '../protocol/index.js';
import type { AgentdClient } from '../clients/lib/index.js';
import type { TestDaemon } from './support/daemon.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { answeringClient, allEvents, assertLogInvariants, createSession, ofType, settle, waitForEvent } from './support/agent.js';
import { startCluster, waitForDaemonLog, type Cluster } from './support/cluster.js';
import { until } from './support/until.js';
import { withFixture } from './support/fixture.js';

const LEASE_MS = 2500;

async function daemonId(client: AgentdClient): Promise<string> {
  return (await client.request(DaemonStatus, {})).daemonId;
}

/** A fresh cluster for one test, disposed whatever happens. */
async function withCluster(size: number, leaseMs: number, body: (cluster: Cluster) => Promise<void>): Promise<void> {
  await withFixture(startCluster(size, { leaseMs }), async (cluster) => {
    await body(cluster);
  });
}

function assertDense(events: Event[]): void {
  assert.deepEqual(events.map((e) => e.seq), Array.from({ length: events.length }, (_, i) => i), 'seqs are dense from 0');
}

describe('several daemons on one PostgreSQL log', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(3, { leaseMs: LEASE_MS });
  });
  after(async () => {
    await cluster?.dispose();
  });

  it('names each daemon and its shared log in daemon/status', async () => {
    const statuses = await Promise.all(cluster.daemons.map(async (d) => (await d.client()).request(DaemonStatus, {})));
    assert.equal(new Set(statuses.map((s) => s.daemonId)).size, 3);
    for (const status of statuses) {
      assert.equal(status.log.backend, 'postgres');
      assert.ok(!status.log.location.includes('@127.0.0.1') || status.log.location.startsWith('postgres://'), status.log.location);
    }
  });

  it('follows a session created through A live through B, with no gap, and lists it everywhere', async () => {
    const [a, b, c] = cluster.daemons as [TestDaemon, TestDaemon, TestDaemon];
    const ca = await a.client();
    const cb = await b.client();
    const sessionId = await createSession(ca);
    const seen: Event[] = [];
    await cb.subscribe(sessionId, 0, { onEvents: (events) => seen.push(...events) });
    cluster.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo from-the-sandbox' } }), reply.text('done, through A', { chunks: 4 })]);
    await ca.request(SessionPrompt, { sessionId, content: 'run something' });
    const events = await settle(ca, sessionId);
    await until(() => seen.length >= events.length, 'B to deliver the whole log');
    assertDense(seen);
    assert.deepEqual(seen, events, 'B delivered exactly the log A wrote, in order');
    assert.deepEqual(assertLogInvariants(events), []);
    assert.match(JSON.stringify(ofType(events, 'tool.result')), /from-the-sandbox/);
    for (const client of [cb, await c.client()]) {
      const { sessions } = await client.request(SessionList, {});
      assert.ok(sessions.some((s) => s.sessionId === sessionId && s.status === 'idle'));
    }
  });

  it('runs a prompt sent to a daemon that does not hold the session, and one sent while another daemon runs a turn', async () => {
    const [a, b] = cluster.daemons as [TestDaemon, TestDaemon];
    const ca = await a.client();
    const cb = await b.client();
    const sessionId = await createSession(ca);
    cluster.emulator.script([reply.text('first, slowly', { delayMs: 600 }), reply.text('second')]);
    await ca.request(SessionPrompt, { sessionId, content: 'first, via A' });
    await waitForEvent(ca, sessionId, (e) => e.type === 'model.requested');
    // A holds the lease and is mid-turn: B's prompt goes into the log and A (or B, once
    // the lease is free) runs it.
    await cb.request(SessionPrompt, { sessionId, content: 'second, via B' });
    const events = await settle(cb, sessionId);
    assert.deepEqual(assertLogInvariants(events), []);
    assert.equal(ofType(events, 'turn.completed').length, 2);
    assert.deepEqual(ofType(events, 'assistant.message').map((e) => (e.data.content as Array<{ text?: string }>)[0]?.text), ['first, slowly', 'second']);
    assertDense(events);
  });

  it('streams deltas to, asks permission of, and takes interrupts from clients of another daemon', async () => {
    const [a, b] = cluster.daemons as [TestDaemon, TestDaemon];
    const ca = await a.client();
    const asked: string[] = [];
    const cb = await answeringClient(b.layout, 'editor-on-b', async (q) => (asked.push(q.tool), 'allow'));
    // Connected to B and able to answer, but no controller of the session: never asked.
    const bystander = await answeringClient(b.layout, 'bystander-on-b', async () => (asked.push('bystander'), 'deny'));
    try {
      const sessionId = await createSession(ca, { permissions: { default: 'ask' } });
      await cb.request(SessionAttach, { sessionId, role: 'controller' });
      const deltas: string[] = [];
      cb.onNotification(SessionDeltaNotification, (d) => {
        if (d.sessionId === sessionId && d.kind === 'text') deltas.push(d.text);
      });
      await cb.subscribe(sessionId, 0, { onEvents: () => undefined });
      cluster.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo approved-on-b' } }), reply.text('streamed to B in pieces', { chunks: 5, chunkDelayMs: 30 })]);
      await ca.request(SessionPrompt, { sessionId, content: 'ask first' });
      const events = await settle(ca, sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.deepEqual(asked, ['bash'], 'the controller on B, and only it, was asked the question of the turn running on A');
      assert.match(String(ofType(events, 'permission.resolved')[0]?.data.by), /^editor-on-b#/);
      assert.match(JSON.stringify(ofType(events, 'tool.result')), /approved-on-b/);
      // Deltas are not events: they may arrive just after the reply is in the log.
      await until(() => deltas.join('') === 'streamed to B in pieces', 'every delta of the reply on B');

      cluster.emulator.script([reply.hang()]);
      const { seq } = await ca.request(SessionPrompt, { sessionId, content: 'this one never answers' });
      await waitForEvent(ca, sessionId, (e) => e.type === 'model.requested' && e.seq > seq);
      assert.deepEqual(await cb.request(SessionInterrupt, { sessionId }), { interrupted: true });
      const after = await settle(ca, sessionId);
      assert.equal(ofType(after, 'turn.interrupted').length, 1, 'the interrupt sent to B stopped the turn running on A');
      assert.deepEqual(assertLogInvariants(after), []);
    } finally {
      cb.close();
      bystander.close();
    }
  });

  it('takes a permission/answer on another daemon from a controller there, and refuses it from anyone else', async () => {
    const [a, b] = cluster.daemons as [TestDaemon, TestDaemon];
    const ca = await a.client();
    const onB = await b.client({ name: 'on-b' });
    const controllerOnB = await b.client({ name: 'controller-on-b' });
    const sessionId = await createSession(ca, { title: 'asked on A', permissions: { default: 'ask' } });
    cluster.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo answered-on-b' } }), reply.text('done')]);
    await ca.request(SessionPrompt, { sessionId, content: 'ask' });
    const toolUseId = String((await waitForEvent(ca, sessionId, (e) => e.type === 'permission.requested')).data.toolUseId);
    const refused = (code: number) => (e: unknown) => e instanceof AgentdError && e.code === code;
    await assert.rejects(onB.request(PermissionAnswer, { sessionId, toolUseId, decision: 'allow' }), refused(ErrorCode.NotController));
    // Prompting on B makes a connection a controller there (control is per connection, per daemon).
    await controllerOnB.request(SessionPrompt, { sessionId, content: 'and then this' });
    await controllerOnB.request(PermissionAnswer, { sessionId, toolUseId, decision: 'allow' });
    const events = await settle(ca, sessionId);
    assert.match(String(ofType(events, 'permission.resolved')[0]?.data.by), /^controller-on-b#/);
    assert.match(JSON.stringify(ofType(events, 'tool.result')), /answered-on-b/);
    await assert.rejects(controllerOnB.request(PermissionAnswer, { sessionId, toolUseId, decision: 'deny' }), refused(ErrorCode.QuestionNotOpen));
  });

  it('never leaves a gap or a duplicate when two daemons append to one session at once', async () => {
    const [a, b] = cluster.daemons as [TestDaemon, TestDaemon];
    const ca = await a.client();
    const cb = await b.client();
    const sessionId = await createSession(ca);
    const prompts = 12;
    cluster.emulator.script([]);
    const sent = await Promise.all(
      Array.from({ length: prompts }, (_, i) => (i % 2 === 0 ? ca : cb).request(SessionPrompt, { sessionId, content: `prompt ${i}` })),
    );
    assert.equal(new Set(sent.map((s) => s.seq)).size, prompts, 'every prompt got its own seq');
    const events = await settle(ca, sessionId, 90_000);
    assertDense(events);
    assert.deepEqual(assertLogInvariants(events), []);
    const users = ofType(events, 'user.message');
    assert.equal(users.length, prompts);
    assert.deepEqual(users.map((e) => e.seq).sort((x, y) => x - y), sent.map((s) => s.seq).sort((x, y) => x - y));
    assert.equal(ofType(events, 'turn.completed').length, prompts);
    assert.equal(ofType(events, 'assistant.message').length, prompts, 'one reply per prompt, none twice');
  });
});

describe('hand-over when the lease holder fails', () => {
  it('completes the turn on another daemon after kill -9 of the holder mid-tool, without a duplicate or an orphan', async () => {
    await withCluster(3, LEASE_MS, async (cluster) => {
      const [a, b, c] = cluster.daemons as [TestDaemon, TestDaemon, TestDaemon];
      const ca = await a.client();
      const cb = await b.client();
      const idA = await daemonId(ca);
      const survivors = new Set([await daemonId(cb), await daemonId(await c.client())]);
      const sessionId = await createSession(ca);
      cluster.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'sleep 30; echo never' } }), reply.text('carried on elsewhere')]);
      await ca.request(SessionPrompt, { sessionId, content: 'start a long command' });
      await waitForEvent(ca, sessionId, (e) => e.type === 'tool.started');
      assert.equal((await cb.request(SessionGet, { sessionId })).runningOn, idA, 'session/get on B says where the turn runs');
      await a.kill('SIGKILL');
      const killedAt = Date.now();
      const completed = await waitForEvent(cb, sessionId, (e) => e.type === 'turn.completed', LEASE_MS + 15_000);
      const handOverMs = Date.now() - killedAt;
      const events = await settle(cb, sessionId);
      // Idle is written just before the lease is given up: look again for a moment.
      await until(async () => (await cb.request(SessionGet, { sessionId })).runningOn === undefined, 'the idle session to run nowhere (its lease given up)');
      assert.deepEqual(assertLogInvariants(events), []);
      assertDense(events);
      const woke = ofType(events, 'harness.woke');
      assert.equal(woke.length, 1);
      assert.ok(survivors.has(String(woke[0]!.data.daemon)), `harness.woke names a surviving daemon, not ${idA}`);
      const result = ofType(events, 'tool.result')[0]!;
      assert.equal(result.data.errorKind, 'interrupted', 'the tool that was running when the holder died gets one interrupted result');
      assert.deepEqual(ofType(events, 'assistant.message').map((e) => (e.data.content as Array<{ type: string; text?: string }>).at(-1)?.text ?? 'tool_use'), ['tool_use', 'carried on elsewhere']);
      assert.ok(completed.seq === events.at(-1)!.seq || events.at(-1)!.type !== 'assistant.message');
      // Expiry is at most one lease after the kill; the rest (the scan, the wake, the turn's
      // last model call) must fit in the "a few seconds".
      assert.ok(handOverMs < LEASE_MS + 5_000, `hand-over took ${handOverMs} ms`);
    });
  });

  it('hands its sessions over at once when stopped gracefully mid-turn', async () => {
    // A lease far longer than the wait below: only the release on stop explains a take-over.
    await withCluster(2, 120_000, async (cluster) => {
      const [a, b] = cluster.daemons as [TestDaemon, TestDaemon];
      const ca = await a.client();
      const cb = await b.client();
      const idB = await daemonId(cb);
      const sessionId = await createSession(ca);
      cluster.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'sleep 30; echo never' } }), reply.text('finished on B')]);
      await ca.request(SessionPrompt, { sessionId, content: 'start, then be stopped' });
      await waitForEvent(ca, sessionId, (e) => e.type === 'tool.started');
      assert.deepEqual(await a.kill('SIGTERM'), { code: 0, signal: null });
      await waitForEvent(cb, sessionId, (e) => e.type === 'turn.completed', 30_000);
      const events = await settle(cb, sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.equal(ofType(events, 'harness.woke')[0]?.data.daemon, idB);
      assert.equal(ofType(events, 'tool.result')[0]?.data.errorKind, 'interrupted');
    });
  });

  it('fences a holder that was paused past its lease: after SIGCONT it cannot append to the session', async (t) => {
    await withCluster(2, LEASE_MS, async (cluster) => {
      const [a, b] = cluster.daemons as [TestDaemon, TestDaemon];
      const ca = await a.client();
      const cb = await b.client();
      const idB = await daemonId(cb);
      const sessionId = await createSession(ca);
      // A's model call is answered while A is stopped; B's, after the take-over, at once.
      cluster.emulator.script([reply.text('stale reply from the paused daemon', { delayMs: 1000 }), reply.text('reply from the new holder')]);
      const asked = cluster.emulator.requests.length;
      await ca.request(SessionPrompt, { sessionId, content: 'who answers?' });
      // Paused only once its request is at the model, so the first reply is A's.
      await cluster.emulator.waitForRequests(asked + 1);
      a.proc.kill('SIGSTOP');
      await waitForEvent(cb, sessionId, (e) => e.type === 'turn.completed', LEASE_MS + 15_000);
      a.proc.kill('SIGCONT');
      // A wakes, gets its (stale) reply, and its write is refused by the fence.
      t.diagnostic(`paused daemon: ${await waitForDaemonLog(a, /lease lost/)}`);
      await waitForDaemonLog(a, /stopped running the session after losing its lease/);
      const events = await allEvents(cb, sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      assertDense(events);
      const replies = ofType(events, 'assistant.message').map((e) => (e.data.content as Array<{ text?: string }>)[0]?.text);
      assert.deepEqual(replies, ['reply from the new holder']);
      assert.equal(ofType(events, 'harness.woke')[0]?.data.daemon, idB);
      assert.equal(events.at(-1)!.type, 'turn.completed', 'nothing was appended after the new holder finished');
      assert.equal((await cb.request(SessionGet, { sessionId })).status, 'idle');
      // A is alive and still serves reads and new turns (it takes the now free lease).
      cluster.emulator.script([reply.text('A again, with a fresh lease')]);
      await ca.request(SessionPrompt, { sessionId, content: 'and now?' });
      const after = await settle(ca, sessionId);
      assert.equal(ofType(after, 'turn.completed').length, 2);
      assert.deepEqual(assertLogInvariants(after), []);
    });
  });
});
