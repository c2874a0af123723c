/** The harness fold as a unit: a session's log in, the state the harness carries on from out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewKnownEvent } from '../protocol/index.js';
import { CHECKPOINT_FORMAT, openCalls, pendingTurn, SessionFold } from '../daemon/harness/fold.js';
import type { StoredEvent } from '../daemon/log/session-log.js';

/** A log of these events, seqs from 0. */
function log(...events: Array<NewKnownEvent | { type: string; data: Record<string, unknown> }>): StoredEvent[] {
  return events.map((e, seq) => ({ seq, ts: 1000 + seq, type: e.type, data: e.data as Record<string, unknown> }));
}

function fold(events: StoredEvent[]): SessionFold {
  const f = new SessionFold();
  for (const event of events) f.apply(event);
  return f;
}

const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 };
const toolUse = (id: string, name = 'bash') => ({ type: 'tool_use' as const, id, name, input: { command: `echo ${id}` } });
const text = (t: string) => ({ type: 'text' as const, text: t });

/** Turns with tool calls, an allow_always, a rename, a rollback, a compaction, a steer, a sub-agent, and a turn left mid-call. */
function sampleLog(): StoredEvent[] {
  return log(
    { type: 'session.created', data: { workspace: '/w', title: 'first' } },
    { type: 'user.message', data: { turnId: 't1', content: 'hello' } },
    { type: 'turn.started', data: { turnId: 't1' } },
    { type: 'model.requested', data: { turnId: 't1', model: 'm', attempt: 1 } },
    { type: 'assistant.message', data: { turnId: 't1', content: [text('calling'), toolUse('u1')], stopReason: 'tool_use', usage } },
    { type: 'permission.requested', data: { turnId: 't1', toolUseId: 'u1', tool: 'bash', input: {} } },
    { type: 'permission.resolved', data: { turnId: 't1', toolUseId: 'u1', decision: 'allow_always', by: 'cli' } },
    { type: 'tool.started', data: { turnId: 't1', toolUseId: 'u1', name: 'bash', input: {}, where: 'sandbox' } },
    { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u1', content: [text('u1')], isError: false, durationMs: 3 } },
    { type: 'assistant.message', data: { turnId: 't1', content: [text('done')], stopReason: 'end_turn', usage } },
    { type: 'turn.completed', data: { turnId: 't1', stopReason: 'end_turn' } },
    { type: 'user.message', data: { turnId: 't2', content: [text('two')] } },
    { type: 'user.message', data: { turnId: 't3', content: 'three' } },
    { type: 'turn.started', data: { turnId: 't2' } },
    { type: 'turn.failed', data: { turnId: 't2', error: 'boom' } },
    { type: 'context.compacted', data: { upToSeq: 10, summary: 'the first turn', turns: 1 } },
    { type: 'session.rolled_back', data: { turns: 1, turnIds: ['t2'], fromSeq: 11 } },
    { type: 'session.renamed', data: { title: 'renamed' } },
    { type: 'turn.started', data: { turnId: 't3' } },
    { type: 'user.steer', data: { turnId: 't4', joins: 't3', content: 'this way' } },
    { type: 'model.requested', data: { turnId: 't3', model: 'm', attempt: 1, steers: [19] } },
    { type: 'assistant.message', data: { turnId: 't3', content: [toolUse('u2'), toolUse('u3', 'read_file'), toolUse('u4', 'agent')], stopReason: 'tool_use', usage } },
    { type: 'tool.started', data: { turnId: 't3', toolUseId: 'u4', name: 'agent', input: {}, where: 'daemon', childSessionId: 's_childaaaaaaa' } },
    { type: 'tool.started', data: { turnId: 't3', toolUseId: 'u2', name: 'bash', input: {}, where: 'sandbox' } },
    { type: 'tool.result', data: { turnId: 't3', toolUseId: 'u2', content: [text('u2')], isError: true, errorKind: 'tool_error', durationMs: 1 } },
    { type: 'future.event', data: { anything: true } },
    { type: 'tool.started', data: { turnId: 't3', toolUseId: 'u3', name: 'read_file', input: {}, where: 'sandbox' } },
  );
}

describe('harness fold', () => {
  it('follows a turn from the user message through a tool call to its end', () => {
    const events = log(
      { type: 'session.created', data: { workspace: '/w' } },
      { type: 'user.message', data: { turnId: 't1', content: 'hello' } },
      { type: 'turn.started', data: { turnId: 't1' } },
      { type: 'model.requested', data: { turnId: 't1', model: 'm', attempt: 1 } },
      { type: 'assistant.message', data: { turnId: 't1', content: [text('calling'), toolUse('u1')], stopReason: 'tool_use', usage } },
      { type: 'tool.started', data: { turnId: 't1', toolUseId: 'u1', name: 'bash', input: {}, where: 'sandbox' } },
      { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u1', content: [text('u1')], isError: false, durationMs: 3 } },
      { type: 'assistant.message', data: { turnId: 't1', content: [text('done')], stopReason: 'end_turn', usage } },
      { type: 'turn.completed', data: { turnId: 't1', stopReason: 'end_turn' } },
    );
    const mid = fold(events.slice(0, 4)).state;
    assert.equal(mid.turns[0]!.modelInFlight, true, 'a model call was in flight when the log stopped');
    assert.equal(pendingTurn(mid)?.turnId, 't1');

    const afterCall = fold(events.slice(0, 6)).state;
    const turn = pendingTurn(afterCall)!;
    assert.equal(turn.modelInFlight, false);
    assert.deepEqual(openCalls(turn).map((c) => [c.toolUseId, c.startedSeq]), [['u1', 5]], 'started, no result: open');

    const done = fold(events).state;
    assert.equal(done.headSeq, events.length);
    assert.equal(pendingTurn(done), undefined);
    const [t1] = done.turns;
    assert.deepEqual(t1!.end, { kind: 'completed', seq: 8 });
    assert.deepEqual(t1!.steps.map((s) => [s.seq, s.stopReason, s.calls.length]), [[4, 'tool_use', 1], [7, 'end_turn', 0]]);
    assert.deepEqual(t1!.steps[0]!.calls[0]!.result, { content: [text('u1')], isError: false });
  });

  it('keeps prompts queued in order and carries on the first that has not ended', () => {
    const state = fold(
      log(
        { type: 'user.message', data: { turnId: 't1', content: 'one' } },
        { type: 'user.message', data: { turnId: 't2', content: [text('two')] } },
        { type: 'turn.started', data: { turnId: 't1' } },
        { type: 'turn.interrupted', data: { turnId: 't1' } },
        { type: 'turn.failed', data: { turnId: 't1', error: 'too late: the first end counts' } },
      ),
    ).state;
    assert.deepEqual(state.turns.map((t) => [t.turnId, t.end?.kind, t.started]), [['t1', 'interrupted', true], ['t2', undefined, false]]);
    assert.equal(pendingTurn(state)?.turnId, 't2');
  });

  it('records permission questions and answers, and remembers allow_always by tool name', () => {
    const state = fold(
      log(
        { type: 'user.message', data: { turnId: 't1', content: 'go' } },
        { type: 'assistant.message', data: { turnId: 't1', content: [toolUse('u1'), toolUse('u2', 'write_file')], stopReason: 'tool_use', usage } },
        { type: 'permission.requested', data: { turnId: 't1', toolUseId: 'u1', tool: 'bash', input: {} } },
        { type: 'permission.resolved', data: { turnId: 't1', toolUseId: 'u1', decision: 'allow_always', by: 'cli#1' } },
        { type: 'permission.requested', data: { turnId: 't1', toolUseId: 'u2', tool: 'write_file', input: {} } },
      ),
    ).state;
    const [u1, u2] = state.turns[0]!.steps[0]!.calls;
    assert.deepEqual(u1!.permission, { requestedSeq: 2, decision: 'allow_always', by: 'cli#1' });
    assert.deepEqual(u2!.permission, { requestedSeq: 4 }, 'asked, not answered yet');
    assert.deepEqual([...state.alwaysAllowed], ['bash']);
  });

  it('takes the latest compaction', () => {
    const state = fold(
      log(
        { type: 'context.compacted', data: { upToSeq: 0, summary: 'old' } },
        { type: 'context.compacted', data: { upToSeq: 1, summary: 'newer', turns: 2 } },
      ),
    ).state;
    assert.deepEqual(state.compaction, { upToSeq: 1, summary: 'newer', seq: 1 });
  });

  it('moves past events it does not know, and events whose data its schema refuses, without acting on them', () => {
    const state = fold(
      log(
        { type: 'user.message', data: { turnId: 't1', content: 'go' } },
        { type: 'workspace.snapshotted', data: { turnId: 't1', anything: [1, 2, 3] } },
        { type: 'turn.completed', data: { turnId: 42 } },
        { type: 'tool.result', data: { toolUseId: 'nobody', content: 'not blocks' } },
      ),
    ).state;
    assert.equal(state.headSeq, 4);
    assert.equal(state.turns[0]!.end, undefined, 'a turn.completed with a bad turnId ends nothing');
    assert.equal(pendingTurn(state)?.turnId, 't1');
  });

  it('forgets the turns a compaction summarised, and keeps the rest', () => {
    const state = fold(
      log(
        { type: 'user.message', data: { turnId: 't1', content: 'one' } },
        { type: 'turn.started', data: { turnId: 't1' } },
        { type: 'assistant.message', data: { turnId: 't1', content: [toolUse('u1')], stopReason: 'tool_use', usage } },
        { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u1', content: [text('r')], isError: false, durationMs: 1 } },
        { type: 'turn.completed', data: { turnId: 't1', stopReason: 'end_turn' } },
        { type: 'user.message', data: { turnId: 't2', content: 'two' } },
        { type: 'context.compacted', data: { upToSeq: 4, summary: 'did one' } },
        { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u1', content: [text('late')], isError: false, durationMs: 1 } },
      ),
    ).state;
    assert.deepEqual(state.turns.map((t) => t.turnId), ['t2']);
    assert.equal(pendingTurn(state)?.turnId, 't2');
    assert.equal(state.headSeq, 8);
  });

  it('resumes from a checkpoint at any seq to exactly the state of a full fold', () => {
    const events = sampleLog();
    const full = fold(events);
    for (let at = 0; at <= events.length; at++) {
      const checkpoint = fold(events.slice(0, at)).checkpoint();
      assert.equal(checkpoint.seq, at);
      const resumed = SessionFold.fromCheckpoint(checkpoint);
      assert.ok(resumed, `checkpoint at ${at} reads back`);
      for (const event of events.slice(at)) resumed.apply(event);
      assert.deepEqual(resumed.state, full.state, `resumed from ${at}`);
      assert.deepEqual(resumed.checkpoint(), full.checkpoint());
    }
  });

  it('keeps in a checkpoint what issue 22 folds: steers, usage, rolled-back turns, the title, sub-agents', () => {
    const full = fold(sampleLog());
    const { state } = full;
    const t3 = state.turns.find((t) => t.turnId === 't3')!;
    assert.deepEqual(t3.steers, [{ seq: 19, content: 'this way', at: 0 }]);
    assert.deepEqual(t3.usage, usage);
    assert.deepEqual([...state.rolledBack], ['t2']);
    assert.equal(state.title, 'renamed');
    assert.deepEqual(state.children, ['s_childaaaaaaa']);
    const resumed = SessionFold.fromCheckpoint(full.checkpoint())!;
    assert.deepEqual(resumed.state, state);
    // A checkpoint of the format before these (agentd.fold/1) is not read: the runner folds the whole log instead.
    const body = JSON.parse(full.checkpoint().state) as Record<string, unknown>;
    const { rolledBack: _r, title: _t, children: _c, ...old } = body;
    assert.equal(SessionFold.fromCheckpoint({ seq: state.headSeq, state: JSON.stringify({ ...old, format: 'agentd.fold/1' }) }), undefined);
    assert.equal(SessionFold.fromCheckpoint({ seq: state.headSeq, state: JSON.stringify({ ...old, format: CHECKPOINT_FORMAT }) }), undefined);
  });

  it('refuses a checkpoint of another format, one that does not parse, or one that says another seq', () => {
    const good = fold(sampleLog()).checkpoint();
    const body = JSON.parse(good.state) as Record<string, unknown>;
    assert.equal(body['format'], CHECKPOINT_FORMAT);
    assert.equal(SessionFold.fromCheckpoint({ seq: good.seq, state: JSON.stringify({ ...body, format: 'agentd.fold/0' }) }), undefined);
    assert.equal(SessionFold.fromCheckpoint({ seq: good.seq, state: JSON.stringify({ ...body, format: undefined }) }), undefined);
    assert.equal(SessionFold.fromCheckpoint({ seq: good.seq, state: good.state.slice(0, -3) }), undefined);
    assert.equal(SessionFold.fromCheckpoint({ seq: good.seq, state: 'null' }), undefined);
    assert.equal(SessionFold.fromCheckpoint({ seq: good.seq - 1, state: good.state }), undefined);
    assert.equal(SessionFold.fromCheckpoint({ seq: good.seq, state: JSON.stringify({ ...body, turns: 'x' }) }), undefined);
  });

  it('ignores events about turns and calls it never saw', () => {
    const state = fold(
      log(
        { type: 'turn.started', data: { turnId: 'ghost' } },
        { type: 'tool.result', data: { turnId: 'ghost', toolUseId: 'ghost', content: [], isError: false, durationMs: 0 } },
        { type: 'permission.resolved', data: { toolUseId: 'ghost', decision: 'allow_always', by: 'x' } },
      ),
    ).state;
    assert.deepEqual(state.turns, []);
    assert.deepEqual([...state.alwaysAllowed], []);
  });
});
