/**
 * The harness is stateless: kill -9 the daemon at each point of a turn, start a new
 * one, and the turn carries on from the log with no duplicate reply and no orphan
 * tool call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionAttach, SessionDeltaNotification, SessionPrompt, SessionSteer, type Event } from '../protocol/index.js';
import { LevelSessionLog } from '../daemon/log/index.js';
import { lastUserText, reply, type Reply } from '../clients/cli/demo/model-emulator.js';
import { answeringClient, assertLogInvariants, createSession, ofType, settle, withAgentRig, waitForEvent } from './support/agent.js';

function assertCarriedOn(events: Event[]): void {
  assert.deepEqual(assertLogInvariants(events), []);
  assert.equal(ofType(events, 'harness.woke').length, 1, 'the new daemon recorded that it woke the session');
  assert.equal(ofType(events, 'turn.completed').length, 1);
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

  /** A reply that waits for `release()`; the test releases it once the daemon that asked is gone. */
  function held(then: Reply): { reply: Reply; release: () => void } {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    return { reply: async () => (await released, then), release };
  }

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
});
