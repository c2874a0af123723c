/**
 * The harness is stateless: kill -9 the daemon at each point of a turn, start a new
 * one, and the turn carries on from the log with no duplicate reply and no orphan
 * tool call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DaemonStatus, ErrorCode, SessionAttach, SessionDeltaNotification, SessionPrompt, SessionSteer, type Event } from '../protocol/index.js';
import { LevelSessionLog } from '../daemon/log/index.js';
import { lastUserText, reply, type Reply } from '../clients/cli/demo/model-emulator.js';
import { answeringClient, assertLogInvariants, createSession, ofType, settle, startAgentRig, withAgentRig, waitForEvent } from './support/agent.js';
import { withFixture } from './support/fixture.js';
import { holdFsyncs } from './support/fsync-fault.js';

function assertCarriedOn(events: Event[]): void {
  assert.deepEqual(assertLogInvariants(events), []);
  assert.equal(ofType(events, 'harness.woke').length, 1, 'the new daemon recorded that it woke the session');
  assert.equal(ofType(events, 'turn.completed').length, 1);
}

/** A reply that waits for `release()`; the test releases it once the daemon that asked is gone. */
function held(then: Reply): { reply: Reply; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return { reply: async () => (await released, then), release };
}

/** No model call without the prompt that opened its turn before it in the log. */
function assertRequestsFollowPrompts(events: Event[]): void {
  const prompted = new Set<string>();
  for (const e of events) {
    if (e.type === 'user.message') prompted.add(String(e.data.turnId));
    if (e.type === 'model.requested') assert.ok(prompted.has(String(e.data.turnId)), `model.requested at ${e.seq} follows its turn's user.message`);
  }
}

describe('harness crash recovery (SIGKILL of the daemon)', () => {
  it('runs a turn whose user message is durable but whose model call never started', async () => {
    await withAgentRig(async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client);
      // Reproduce the exact state: stop the daemon, append the user message as the
      // daemon would have just before dying, then start a new daemon.
      client.close();
      await rig.daemon.kill('SIGKILL');
      const log = await LevelSessionLog.open(rig.daemon.layout.db);
      await log.append(sessionId, [{ type: 'user.message', data: { turnId: 't_crashbeforecall01', content: 'hello after a crash' } }], { status: 'queued' });
      await log.close();
      rig.emulator.script([reply.text('answered once')]);
      const fresh = await (await import('./support/daemon.js')).startDaemon({ layout: rig.daemon.layout, env: { ANTHROPIC_BASE_URL: rig.emulator.url, ANTHROPIC_API_KEY: 'sk-test-key' } });
      try {
        const events = await settle(await fresh.client(), sessionId);
        assertCarriedOn(events);
        assert.equal(ofType(events, 'assistant.message').length, 1);
      } finally {
        await fresh.dispose();
      }
    });
  });

  it('also survives a kill right after session/prompt answers', async () => {
    await withAgentRig(async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client);
      rig.emulator.script([reply.text('one answer', { delayMs: 300 }), reply.text('one answer')]);
      await client.request(SessionPrompt, { sessionId, content: 'quick' });
      const daemon = await rig.crashAndRestart();
      const events = await settle(await daemon.client(), sessionId);
      assertCarriedOn(events);
      assert.equal(ofType(events, 'assistant.message').length, 1);
    });
  });

  it('makes the model call again when the daemon died mid-stream, storing exactly one reply', async () => {
    await withAgentRig(async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client);
      rig.emulator.script([reply.text('a slow reply in many pieces', { chunks: 20, chunkDelayMs: 200 }), reply.text('the reply after the crash')]);
      let sawDelta!: () => void;
      const delta = new Promise<void>((r) => (sawDelta = r));
      client.onNotification(SessionDeltaNotification, () => sawDelta());
      await client.subscribe(sessionId, 0, { onEvents: () => undefined });
      await client.request(SessionPrompt, { sessionId, content: 'stream something' });
      await delta;
      const daemon = await rig.crashAndRestart();
      const events = await settle(await daemon.client(), sessionId);
      assertCarriedOn(events);
      const replies = ofType(events, 'assistant.message');
      assert.equal(replies.length, 1, 'exactly one assistant.message');
      assert.match(JSON.stringify(replies[0]!.data.content), /the reply after the crash/);
      assert.equal(ofType(events, 'model.requested').length, 2, 'the call was made again');
    });
  });

  it('records an interrupted result for a tool that was running, never sending an orphan tool_use', async () => {
    await withAgentRig(async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client);
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'sleep 30' } }), reply.text('I saw the tool was interrupted')]);
      await client.request(SessionPrompt, { sessionId, content: 'run a long command' });
      const started = await waitForEvent(client, sessionId, (e) => e.type === 'tool.started');
      const daemon = await rig.crashAndRestart();
      const events = await settle(await daemon.client(), sessionId);
      assertCarriedOn(events);
      const result = ofType(events, 'tool.result').find((e) => e.data.toolUseId === started.data.toolUseId)!;
      assert.equal(result.data.isError, true);
      assert.equal(result.data.errorKind, 'interrupted');
      const last = rig.emulator.requests.at(-1)!;
      assert.equal(last.status, 200, 'the API accepted the context: the tool_use had its tool_result');
    });
  });

  it('asks an unanswered permission question again of clients that connect after the restart', async () => {
    await withAgentRig(async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client, { permissions: { default: 'ask' } });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo permitted' } }), reply.text('ran it')]);
      await client.request(SessionPrompt, { sessionId, content: 'needs permission' });
      await waitForEvent(client, sessionId, (e) => e.type === 'permission.requested');
      const daemon = await rig.crashAndRestart();
      const asked: string[] = [];
      const answerer = await answeringClient(daemon.layout, 'late', async (q) => (asked.push(q.toolUseId), 'allow'));
      await answerer.request(SessionAttach, { sessionId, role: 'controller' });
      try {
        const events = await settle(await daemon.client(), sessionId);
        assertCarriedOn(events);
        assert.equal(asked.length, 1);
        assert.equal(ofType(events, 'permission.requested').length, 1, 'the question is not duplicated in the log');
        assert.match(String(ofType(events, 'permission.resolved')[0]!.data.by), /^late#/);
        assert.match(JSON.stringify(ofType(events, 'tool.result')[0]!.data.content), /permitted/);
      } finally {
        answerer.close();
      }
    });
  });

  for (const point of ['before a model call carried it', 'after the model call that carries it was requested'] as const) {
    it(`carries a steer on exactly once when the daemon died ${point}`, async () => {
      await withAgentRig(async (rig) => {
        const client = await rig.daemon.client();
        const sessionId = await createSession(client);
        const first = held(reply.text('a first draft'));
        const second = held(reply.text('never delivered'));
        rig.emulator.script([first.reply, second.reply]);
        await client.request(SessionPrompt, { sessionId, content: 'write a poem' });
        await waitForEvent(client, sessionId, (e) => e.type === 'model.requested');
        const steer = await client.request(SessionSteer, { sessionId, content: 'about the sea' });
        assert.equal(steer.steered, true);
        if (point === 'before a model call carried it') {
          await waitForEvent(client, sessionId, (e) => e.type === 'user.steer');
        } else {
          first.release();
          await waitForEvent(client, sessionId, (e) => e.type === 'model.requested' && Array.isArray(e.data.steers));
        }
        rig.emulator.script([reply.text('the poem about the sea')]);
        const start = rig.emulator.requests.length;
        const daemon = await rig.crashAndRestart();
        first.release();
        second.release();
        const events = await settle(await daemon.client(), sessionId);
        assertCarriedOn(events);
        const after = rig.emulator.requests.slice(start).filter((r) => r.replyKind !== undefined);
        assert.equal(after.length, 1, 'one model call after the restart');
        assert.match(lastUserText(after[0]!.body), /about the sea$/, 'the steer is the last thing the model reads');
        assert.equal(JSON.stringify(after[0]!.body).split('about the sea').length - 1, 1, 'the steer is in the request once');
        assert.match(JSON.stringify(ofType(events, 'assistant.message').at(-1)!.data.content), /the poem about the sea/);
        assert.equal(ofType(events, 'user.steer').length, 1);
      });
    });
  }

  // Another writer's append (here an eager sandbox's sandbox.provisioned) queued while the
  // turn's last append waits for its fsync: the runner's conditional 'idle' loses to it
  // until it lands. Looking again at once, with nothing but microtasks in between, kept
  // the log from ever writing its next batch: the daemon spun at 100% CPU for good.
  it('goes idle after another append that was not yet durable when its turn ended', { timeout: 60_000 }, async () => {
    // Each fsync takes 300 ms. The prompt's message is durable at about 300 ms, the turn's
    // end at about 600; the eager sandbox, bound after the first token and 350 ms slower
    // than it would be, is recorded at about 420: queued behind the turn's end.
    await withFixture(startAgentRig({ AGENTD_BENCH_SANDBOX_DELAY_MS: '350' }), async (rig) => {
      const client = await rig.daemon.client();
      rig.emulator.script([reply.text('the answer')]);
      const fault = await holdFsyncs(rig.daemon.proc.pid!, { delayMs: 300 });
      try {
        const sessionId = await createSession(client, { sandbox: { eager: true } });
        await client.request(SessionPrompt, { sessionId, content: 'hello' });
        await waitForEvent(client, sessionId, (e) => e.type === 'sandbox.provisioned', 15_000);
        const events = await settle(client, sessionId, 15_000);
        assert.deepEqual(assertLogInvariants(events), []);
        assert.equal(ofType(events, 'turn.completed').length, 1);
        await client.request(DaemonStatus, {}); // still serving
      } finally {
        await fault.detach();
      }
    });
  });

  // The model call of a prompt leaves while its user message is being made durable (the
  // prompt is answered only once it is). A kill at either side of that fsync recovers.
  describe('a prompt whose model call left before its message was durable', () => {
    it('recovers when the daemon died after the request left, before the message was durable', async (t) => {
      await withAgentRig(async (rig) => {
        const client = await rig.daemon.client();
        const sessionId = await createSession(client);
        const first = held(reply.text('never delivered'));
        rig.emulator.script([first.reply, reply.text('the one answer')]);
        // Every fsync of the daemon waits: the message's append is under way, not durable.
        const fault = await holdFsyncs(rig.daemon.proc.pid!, { delayMs: 60_000 });
        let answered = false;
        const prompt = client.request(SessionPrompt, { sessionId, content: 'hello while the disk is slow' }).then(
          () => (answered = true),
          () => undefined,
        );
        await rig.emulator.waitForRequests(1);
        assert.equal(answered, false, 'the request left before the prompt was answered');
        const daemon = await rig.crashAndRestart();
        await fault.detach();
        first.release();
        await prompt;
        const events = await settle(await daemon.client(), sessionId);
        assert.deepEqual(assertLogInvariants(events), []);
        assertRequestsFollowPrompts(events);
        // A kill -9 keeps what the OS was handed: the message may be there, never answered.
        t.diagnostic(`after the restart the unanswered message is ${ofType(events, 'user.message').length ? 'in the log' : 'not in the log'}`);
        if (ofType(events, 'user.message').length === 1) {
          assertCarriedOn(events);
          const replies = ofType(events, 'assistant.message');
          assert.equal(replies.length, 1, 'exactly one reply');
          assert.match(JSON.stringify(replies[0]!.data.content), /the one answer/);
        } else {
          assert.deepEqual(events.map((e) => e.type), ['session.created'], 'nothing of the unanswered prompt');
        }
      });
    });

    it('recovers when the daemon died after the message was durable, before the first delta', async () => {
      await withAgentRig(async (rig) => {
        const client = await rig.daemon.client();
        const sessionId = await createSession(client);
        const first = held(reply.text('never delivered'));
        rig.emulator.script([first.reply, reply.text('the one answer')]);
        let deltas = 0;
        client.onNotification(SessionDeltaNotification, () => deltas++);
        await client.subscribe(sessionId, 0, { onEvents: () => undefined });
        await client.request(SessionPrompt, { sessionId, content: 'hello' });
        await rig.emulator.waitForRequests(1);
        await waitForEvent(client, sessionId, (e) => e.type === 'model.requested');
        const daemon = await rig.crashAndRestart();
        first.release();
        assert.equal(deltas, 0, 'no delta reached the client before the kill');
        const events = await settle(await daemon.client(), sessionId);
        assertCarriedOn(events);
        assertRequestsFollowPrompts(events);
        const replies = ofType(events, 'assistant.message');
        assert.equal(replies.length, 1, 'exactly one reply');
        assert.match(JSON.stringify(replies[0]!.data.content), /the one answer/);
        assert.equal(ofType(events, 'model.requested').length, 2, 'the call was made again');
      });
    });

    it('fails the prompt, stops its model call and records nothing of it when the message cannot be made durable', async (t) => {
      await withAgentRig(async (rig) => {
        const client = await rig.daemon.client();
        const sessionId = await createSession(client);
        const first = held(reply.text('must never reach a client'));
        rig.emulator.script([reply.text('warmed up'), first.reply, reply.text('after the disk came back'), reply.text('after the disk came back')]);
        // A runner made already: its turn starts within the fsync's delay whatever strace costs.
        await client.request(SessionPrompt, { sessionId, content: 'warm up' });
        await settle(client, sessionId);
        const streamed: string[] = [];
        client.onNotification(SessionDeltaNotification, ({ text }) => void streamed.push(text));
        await client.subscribe(sessionId, 0, { onEvents: () => undefined });
        // The message's fsync fails, a while after the model call for it left.
        const fault = await holdFsyncs(rig.daemon.proc.pid!, { delayMs: 5000, error: 'EIO' });
        const failed = client.request(SessionPrompt, { sessionId, content: 'lost on the way to disk' }).then(
          () => undefined,
          (error: { code?: number }) => error,
        );
        await rig.emulator.waitForRequests(2);
        first.release(); // its reply streams to the daemon while the fsync is held
        const error = await failed;
        assert.equal(error?.code, ErrorCode.StorageFailure, 'the prompt failed as a storage failure');
        await fault.detach();
        // The disk is back: the session goes on (a store reopened after a failed fsync may
        // still hold what the OS had been handed, and then that prompt is answered once).
        await client.request(SessionPrompt, { sessionId, content: 'and now?' });
        const events = await settle(client, sessionId);
        t.diagnostic(`the failed prompt's message is ${events.some((e) => JSON.stringify(e.data).includes('lost on the way')) ? 'in' : 'not in'} the reopened log`);
        assert.deepEqual(assertLogInvariants(events), []);
        assertRequestsFollowPrompts(events);
        assert.ok(!streamed.join('').includes('must'), `nothing the unrecorded call streamed reached the client: ${streamed.join('')}`);
        assert.ok(!JSON.stringify(events).includes('must never'), 'nothing of the unrecorded call is in the log');
        assert.equal(ofType(events, 'assistant.message').length, ofType(events, 'user.message').length, 'one reply per prompt in the log');
        assert.equal(ofType(events, 'turn.failed').length, 0);
        assert.equal(ofType(events, 'turn.completed').length, ofType(events, 'user.message').length);
      });
    });
  });
});
