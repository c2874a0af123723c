/**
 * Waking from a checkpoint of the fold: a long session wakes from its checkpoint and reads
 * only what follows it, a kill -9 between a checkpoint and the events after it loses
 * nothing, and a checkpoint of another format is passed over for a full fold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewKnownEvent } from '../protocol/index.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { SessionFold } from '../daemon/harness/fold.js';
import { CHECKPOINT_EVERY } from '../daemon/harness/runner.js';
import { LevelSessionLog } from '../daemon/log/index.js';
import { appendEvents } from '../daemon/events.js';
import { startDaemon } from './support/daemon.js';
import { API_KEY, assertLogInvariants, createSession, ofType, settle, withAgentRig, waitForEvent, type AgentRig } from './support/agent.js';
import { readAll } from './support/log.js';

const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 };

/** `turns` finished turns of five events each; the user's text says which turn it is. */
function history(turns: number): NewKnownEvent[] {
  return Array.from({ length: turns }, (_, t): NewKnownEvent[] => {
    const turnId = `t_history${String(t).padStart(8, '0')}`;
    return [
      { type: 'user.message', data: { turnId, content: `question ${t}` } },
      { type: 'turn.started', data: { turnId } },
      { type: 'model.requested', data: { turnId, model: 'claude-test', attempt: 1 } },
      { type: 'assistant.message', data: { turnId, content: [{ type: 'text', text: `answer ${t}` }], stopReason: 'end_turn', usage } },
      { type: 'turn.completed', data: { turnId, stopReason: 'end_turn' } },
    ];
  }).flat();
}

/** Stops the rig's daemon with SIGKILL, runs `edit` on its log, starts a new daemon on it. */
async function killEditRestart(rig: AgentRig, edit: (log: LevelSessionLog) => Promise<void>): Promise<void> {
  await rig.daemon.kill('SIGKILL');
  const log = await LevelSessionLog.open(rig.daemon.layout.db);
  try {
    await edit(log);
  } finally {
    await log.close();
  }
  rig.daemon = await startDaemon({ layout: rig.daemon.layout, env: { ANTHROPIC_BASE_URL: rig.emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' } });
}

/** The messages of the last model request, as JSON. */
function lastRequestText(rig: AgentRig): string {
  return JSON.stringify(rig.emulator.requests.at(-1)!.body.messages);
}

describe('harness wake from a checkpoint', () => {
  it('survives kill -9 between a checkpoint and the events after it, and wakes from that checkpoint', async () => {
    await withAgentRig(async (rig) => {
      const sessionId = await createSession(await rig.daemon.client());
      const turns = Math.ceil(CHECKPOINT_EVERY / 5) + 10;
      // A long session left mid-turn, as a crash would leave it.
      await killEditRestart(rig, async (log) => {
        await appendEvents(log, sessionId, [...history(turns), { type: 'user.message', data: { turnId: 't_pending0000000', content: 'run the long command' } }], { status: 'queued' });
        assert.equal(await log.getCheckpoint(sessionId), undefined);
      });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'sleep 30' } }), reply.text('the command was cut off')]);
      const client = await rig.daemon.client();
      await waitForEvent(client, sessionId, (e) => e.type === 'tool.started');
      let checkpointSeq = -1;
      await killEditRestart(rig, async (log) => {
        const events = await readAll(log, sessionId);
        const checkpoint = await log.getCheckpoint(sessionId);
        assert.ok(checkpoint, 'the woken runner kept a checkpoint of what it folded');
        checkpointSeq = checkpoint.seq;
        assert.ok(checkpointSeq >= CHECKPOINT_EVERY && checkpointSeq < events.length, `checkpoint at ${checkpointSeq} of ${events.length}`);
        assert.ok(events.slice(checkpointSeq).some((e) => e.type === 'tool.started'), 'the tool started after the checkpoint');
        // The checkpoint is exactly the fold of the events before it.
        const full = new SessionFold();
        for (const event of events.slice(0, checkpointSeq)) full.apply(event);
        assert.deepEqual(SessionFold.fromCheckpoint(checkpoint)?.state, full.state);
      });
      const events = await settle(await rig.daemon.client(), sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.equal(ofType(events, 'harness.woke').length, 2);
      assert.equal(ofType(events, 'tool.started').length, 1, 'the tool did not run twice');
      const results = ofType(events, 'tool.result');
      assert.equal(results.length, 1);
      assert.equal(results[0]!.data.errorKind, 'interrupted');
      assert.equal(ofType(events, 'turn.completed').length, turns + 1);
      const last = rig.emulator.requests.at(-1)!;
      assert.equal(last.status, 200, 'the API accepted the context built from the checkpoint');
      const text = lastRequestText(rig);
      for (const part of ['"question 0"', `"answer ${turns - 1}"`, 'run the long command', 'stopped while this tool was running']) {
        assert.ok(text.includes(part), `the last request has ${part}`);
      }
    });
  });

  it('builds the context from the checkpoint when it can read it, and from the whole log when its format is another', async () => {
    await withAgentRig(async (rig) => {
      const sessionId = await createSession(await rig.daemon.client());
      const pending = (n: number): NewKnownEvent => ({ type: 'user.message', data: { turnId: `t_pending${n}000000`, content: `pending ${n}` } });
      // What the checkpoint says differs from the log (a marker in its first question): a
      // context with the marker was built from the checkpoint, one without from the log.
      const marked = async (log: LevelSessionLog, format?: string) => {
        const fold = new SessionFold();
        for (const event of await readAll(log, sessionId)) fold.apply(event);
        const checkpoint = fold.checkpoint();
        const body = JSON.parse(checkpoint.state.replace('question 0', 'question 0 FROM-CHECKPOINT')) as Record<string, unknown>;
        await log.putCheckpoint(sessionId, { seq: checkpoint.seq, state: JSON.stringify(format ? { ...body, format } : body) });
      };
      await killEditRestart(rig, async (log) => {
        await appendEvents(log, sessionId, history(3));
        await marked(log);
        await appendEvents(log, sessionId, [pending(1)], { status: 'queued' });
      });
      rig.emulator.script([reply.text('from the checkpoint')]);
      await settle(await rig.daemon.client(), sessionId);
      assert.ok(lastRequestText(rig).includes('question 0 FROM-CHECKPOINT'), 'the context came from the checkpoint');
      assert.ok(lastRequestText(rig).includes('pending 1'), 'and the events after it');

      await killEditRestart(rig, async (log) => {
        await marked(log, 'agentd.fold/0');
        await appendEvents(log, sessionId, [pending(2)], { status: 'queued' });
      });
      rig.emulator.script([reply.text('from the log')]);
      const events = await settle(await rig.daemon.client(), sessionId);
      assert.ok(!lastRequestText(rig).includes('FROM-CHECKPOINT'), 'a checkpoint of another format was not read');
      assert.ok(lastRequestText(rig).includes('"question 0"') && lastRequestText(rig).includes('pending 2'), 'the context came from the whole log');
      assert.deepEqual(assertLogInvariants(events), []);
    });
  });
});
