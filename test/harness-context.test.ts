/** Context building as a unit: the fold's state in, the Messages-API request out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewKnownEvent } from '../protocol/index.js';
import { buildRequest, buildSummaryRequest, contextTurns, estimateTokens, requestBody, type ContextOptions } from '../daemon/harness/context.js';
import { SessionFold, type SessionState } from '../daemon/harness/fold.js';

function state(...events: NewKnownEvent[]): SessionState {
  const fold = new SessionFold();
  events.forEach((e, seq) => fold.apply({ seq, ts: seq, type: e.type, data: e.data as Record<string, unknown> }));
  return fold.state;
}

const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 };
const text = (t: string) => ({ type: 'text' as const, text: t });
const toolUse = (id: string) => ({ type: 'tool_use' as const, id, name: 'bash', input: { command: id } });
const options: ContextOptions = {
  model: 'claude-test',
  maxTokens: 1000,
  system: 'be brief',
  tools: [
    { name: 'bash', description: 'run', input_schema: { type: 'object' } },
    { name: 'read_file', description: 'read', input_schema: { type: 'object' } },
  ],
};

const turn1: NewKnownEvent[] = [
  { type: 'user.message', data: { turnId: 't1', content: 'list files' } },
  { type: 'turn.started', data: { turnId: 't1' } },
  { type: 'assistant.message', data: { turnId: 't1', content: [text('listing'), toolUse('u1'), toolUse('u2')], stopReason: 'tool_use', usage } },
  { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u1', content: [text('a.ts')], isError: false, durationMs: 1 } },
  { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u2', content: [], isError: true, errorKind: 'sandbox_lost', durationMs: 1 } },
  { type: 'assistant.message', data: { turnId: 't1', content: [text('a.ts is there')], stopReason: 'end_turn', usage } },
  { type: 'turn.completed', data: { turnId: 't1', stopReason: 'end_turn' } },
];
const turn2: NewKnownEvent[] = [
  { type: 'user.message', data: { turnId: 't2', content: [text('and now?')] } },
  { type: 'turn.started', data: { turnId: 't2' } },
];

const withoutCacheMarks = (value: unknown): unknown => JSON.parse(JSON.stringify(value), (key, v) => (key === 'cache_control' ? undefined : v));

describe('context building', () => {
  it('turns the log into alternating messages, every tool_use answered by a tool_result', () => {
    const request = buildRequest(state(...turn1, ...turn2), options);
    assert.deepEqual(withoutCacheMarks(request.messages), [
      { role: 'user', content: [text('list files')] },
      { role: 'assistant', content: [text('listing'), toolUse('u1'), toolUse('u2')] },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'u1', content: [text('a.ts')] },
          { type: 'tool_result', tool_use_id: 'u2', content: '(no output)', is_error: true },
        ],
      },
      { role: 'assistant', content: [text('a.ts is there')] },
      { role: 'user', content: [text('and now?')] },
    ]);
  });

  it('gives a call the log has no result for an error result, so no tool_use is orphaned', () => {
    const request = buildRequest(
      state(
        { type: 'user.message', data: { turnId: 't1', content: 'go' } },
        { type: 'turn.started', data: { turnId: 't1' } },
        { type: 'assistant.message', data: { turnId: 't1', content: [toolUse('u1')], stopReason: 'tool_use', usage } },
        { type: 'turn.interrupted', data: { turnId: 't1' } },
        { type: 'user.message', data: { turnId: 't2', content: 'again' } },
      ),
      options,
    );
    const results = request.messages[2]!;
    assert.equal(results.role, 'user');
    assert.deepEqual(withoutCacheMarks(results.content), [
      { type: 'tool_result', tool_use_id: 'u1', content: 'no result was recorded for this call (interrupted)', is_error: true },
      text('again'),
    ]);
  });

  it('marks the cache breakpoints: the system prompt, the last tool, the last block', () => {
    const request = buildRequest(state(...turn1, ...turn2), options);
    assert.deepEqual(request.system, [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }]);
    assert.deepEqual(request.tools?.map((t) => 'cache_control' in t), [false, true]);
    const blocks = request.messages.flatMap((m) => m.content);
    assert.deepEqual(blocks.map((b) => 'cache_control' in b), [...blocks.slice(1).map(() => false), true]);
    assert.equal(request.model, 'claude-test');
    assert.equal(request.max_tokens, 1000);
  });

  it('is deterministic, and each turn extends the previous request, so the prompt cache holds', () => {
    const first = buildRequest(state(...turn1.slice(0, 2)), options);
    const again = buildRequest(state(...turn1.slice(0, 2)), options);
    assert.equal(JSON.stringify(first), JSON.stringify(again));
    const later = buildRequest(state(...turn1, ...turn2), options);
    const prefix = JSON.stringify(withoutCacheMarks(first.messages)).slice(0, -1);
    assert.ok(JSON.stringify(withoutCacheMarks(later.messages)).startsWith(prefix));
  });

  it('leaves out prompts queued behind the running turn', () => {
    const s = state(...turn1.slice(0, 2), { type: 'user.message', data: { turnId: 't9', content: 'queued' } });
    assert.deepEqual(contextTurns(s).map((t) => t.turnId), ['t1']);
    assert.ok(!JSON.stringify(buildRequest(s, options)).includes('queued'));
  });

  it('replaces compacted turns with their summary', () => {
    const events = [...turn1, { type: 'context.compacted', data: { upToSeq: 6, summary: 'listed a.ts' } } as const, ...turn2];
    const s = state(...events);
    assert.deepEqual(contextTurns(s).map((t) => t.turnId), ['t2']);
    const request = buildRequest(s, options);
    assert.equal(request.messages.length, 1, 'the summary and the new prompt are one user message');
    const [summary, prompt] = request.messages[0]!.content;
    assert.match((summary as { text: string }).text, /compacted[\s\S]*listed a\.ts$/);
    assert.deepEqual(withoutCacheMarks(prompt), text('and now?'));
  });

  it('asks for a summary without tools or cache marks, ending with the instruction', () => {
    const s = state(...turn1, ...turn2);
    const summary = buildSummaryRequest(s, [s.turns[0]!], options);
    assert.equal(summary.tools, undefined);
    assert.ok(!JSON.stringify(summary.messages).includes('cache_control'));
    assert.equal(summary.messages.at(-1)!.role, 'user');
    assert.match(JSON.stringify(summary.messages.at(-1)!.content.at(-1)), /Summarise the conversation/);
    assert.ok(!JSON.stringify(summary).includes('and now?'), 'only the turns to summarise');
  });

  it('builds from a long-lived fold exactly what a fresh fold of the same events builds, ended turns kept between calls', () => {
    const events: NewKnownEvent[] = [
      ...turn1,
      // Interrupted with a call that has no result yet: its tool_result message joins the next turn's prompt.
      { type: 'user.message', data: { turnId: 't2', content: 'go on' } },
      { type: 'turn.started', data: { turnId: 't2' } },
      { type: 'assistant.message', data: { turnId: 't2', content: [toolUse('u3')], stopReason: 'tool_use', usage } },
      { type: 'turn.interrupted', data: { turnId: 't2' } },
      { type: 'user.message', data: { turnId: 't3', content: 'and then?' } },
      { type: 'turn.started', data: { turnId: 't3' } },
      // A result the ended turn gets late: its messages must change with it.
      { type: 'tool.result', data: { turnId: 't2', toolUseId: 'u3', content: [text('late')], isError: false, durationMs: 1 } },
      { type: 'user.steer', data: { turnId: 't4', joins: 't3', content: 'briefly' } },
      { type: 'model.requested', data: { turnId: 't3', model: 'claude-test', attempt: 1, steers: [11] } },
      { type: 'assistant.message', data: { turnId: 't3', content: [text('done')], stopReason: 'end_turn', usage } },
      { type: 'turn.completed', data: { turnId: 't3', stopReason: 'end_turn' } },
      ...turn2.map((e) => ({ ...e, data: { ...e.data, turnId: 't5' } }) as NewKnownEvent),
      { type: 'session.rolled_back', data: { turns: 1, turnIds: ['t1'], fromSeq: 0 } },
    ];
    const live = new SessionFold();
    const seen: string[] = [];
    events.forEach((e, seq) => {
      live.apply({ seq, ts: seq, type: e.type, data: e.data as Record<string, unknown> });
      const request = buildRequest(live.state, options);
      const fresh = buildRequest(state(...events.slice(0, seq + 1)), options);
      assert.equal(JSON.stringify(request), JSON.stringify(fresh), `after event ${seq} (${e.type})`);
      // The bytes sent are put together from JSON kept between calls: they must be the request's, exactly.
      const sent = JSON.stringify({ ...request, stream: true });
      assert.equal(requestBody(request).toString('utf8'), sent, `body after event ${seq}`);
      assert.equal(estimateTokens(request), Math.ceil(Buffer.byteLength(sent) / 4), `estimate after event ${seq}`);
      seen.push(JSON.stringify(request));
    });
    assert.ok(seen.some((r) => r.includes('late')) && seen.some((r) => r.includes('no result was recorded')), 'the late result replaced the placeholder');
    assert.equal(seen.at(-1)!.match(/cache_control/g)!.length, 3, 'one mark on the system prompt, the last tool and the last block: none left behind on kept messages');
  });

  it('estimates size from the request', () => {
    const small = buildRequest(state(...turn1.slice(0, 2)), options);
    const big = buildRequest(state(...turn1, ...turn2), options);
    assert.ok(estimateTokens(big) > estimateTokens(small));
    assert.equal(estimateTokens(small), Math.ceil(Buffer.byteLength(JSON.stringify({ ...small, stream: true })) / 4));
    const both = state(...turn1, ...turn2);
    const summary = buildSummaryRequest(both, [both.turns[0]!], options);
    assert.equal(requestBody(summary).toString('utf8'), JSON.stringify({ ...summary, stream: true }), 'a request without tools');
  });
});
