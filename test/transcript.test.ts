/**
 * The shared fold of events into a transcript, as a pure function: events (and deltas)
 * in, turns and changes out. No daemon: the events are written here as the log would
 * hold them.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import type { Event } from '../protocol/index.js';
import { transcriptOf, transcriptStatus, TranscriptFold, type Delta, type TranscriptChange } from '../clients/lib/transcript.js';
import { ChatModel } from '../clients/lib/chat-view.js';

/** A log written event by event: seqs dense from 0, as the daemon appends them. */
function log() {
  const events: Event[] = [];
  const add = (type: string, data: Record<string, unknown>): Event => {
    const event = { seq: events.length, ts: 1_700_000_000_000 + events.length, type, data };
    events.push(event);
    return event;
  };
  return { events, add };
}

const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0 };
const delta = (turnId: string, index: number, text: string, kind: Delta['kind'] = 'text'): Delta => ({ sessionId: 's_test', turnId, kind, index, text });
/** The changes as short strings, to compare whole sequences at a glance. */
const brief = (changes: TranscriptChange[]) =>
  changes.map((c) => {
    switch (c.kind) {
      case 'text':
        return `text${c.fresh ? '+' : ''}${c.streamed ? '~' : ''}:${c.text}`;
      case 'tool':
        return `tool:${c.call.toolUseId}:${c.what}`;
      case 'notice':
        return `notice:${c.notice.type}`;
      case 'ended':
        return `ended:${c.end.kind}`;
      case 'unknown':
        return `unknown:${c.event.type}`;
      default:
        return c.kind;
    }
  });

describe('transcript fold', () => {
  it('folds a turn: streamed text once, a tool call through its states, a weaker-isolation notice, the outcome', () => {
    const { events, add } = log();
    add('session.created', { workspace: '/w', title: 'demo', model: 'm' });
    add('user.message', { turnId: 't1', content: 'run it' });
    add('turn.started', { turnId: 't1' });
    add('model.requested', { turnId: 't1', model: 'm', attempt: 1 });
    const fold = new TranscriptFold();
    const changes = fold.events(events);
    assert.deepEqual(brief(changes), ['user']);
    // The stream of the first call, then its durable reply: only what the stream missed is new.
    assert.deepEqual(brief([...fold.delta(delta('t1', 0, 'Let me ')), ...fold.delta(delta('t1', 0, 'run'))]), ['text+~:Let me ', 'text~:run']);
    assert.deepEqual(fold.delta(delta('t1', 1, '{"comm', 'tool_input')), [], 'tool input streams into the state, not as text');
    assert.equal(fold.transcript.turns[0]!.streaming.length, 2);
    const step = fold.event(
      add('assistant.message', {
        turnId: 't1',
        content: [
          { type: 'text', text: 'Let me run that.' },
          { type: 'tool_use', id: 'tu1', name: 'bash', input: { command: 'echo hi' } },
          { type: 'tool_use', id: 'tu2', name: 'read_file', input: { path: 'a' } },
        ],
        stopReason: 'tool_use',
        usage,
      }),
    );
    assert.equal(step.turn?.turnId, 't1');
    assert.deepEqual(brief(step.changes), ['text: that.', 'tool:tu1:announced', 'tool:tu2:announced']);
    const later = [
      add('tool.started', { turnId: 't1', toolUseId: 'tu1', name: 'bash', input: { command: 'echo hi' }, where: 'sandbox' }),
      add('sandbox.provisioned', { isolation: 'namespaces', durationMs: 40, warnings: ['no seccomp filter'] }),
      add('tool.result', { turnId: 't1', toolUseId: 'tu1', content: [{ type: 'text', text: 'hi' }], isError: false, durationMs: 5 }),
      add('tool.result', { turnId: 't1', toolUseId: 'tu2', content: [{ type: 'text', text: 'no such file' }], isError: true, durationMs: 1 }),
      add('model.requested', { turnId: 't1', model: 'm', attempt: 1 }),
      add('assistant.message', { turnId: 't1', content: [{ type: 'text', text: 'It printed hi.' }], stopReason: 'end_turn', usage }),
      add('turn.completed', { turnId: 't1', stopReason: 'end_turn' }),
    ];
    assert.deepEqual(brief(fold.events(later)), [
      'tool:tu1:running',
      'notice:sandbox.provisioned',
      'tool:tu1:result',
      'tool:tu2:result',
      'text+:It printed hi.',
      'ended:completed',
    ]);

    const t = fold.transcript;
    assert.equal(t.next, events.length);
    assert.deepEqual([t.workspace, t.title, t.model], ['/w', 'demo', 'm']);
    assert.equal(transcriptStatus(t), 'idle');
    const [turn] = t.turns;
    assert.equal(t.turns.length, 1);
    assert.deepEqual(turn!.user, { seq: 1, content: 'run it' });
    assert.deepEqual(turn!.end, { kind: 'completed', stopReason: 'end_turn', seq: events.length - 1 });
    assert.deepEqual(turn!.reply, { text: 'It printed hi.', stopReason: 'end_turn' });
    assert.deepEqual(turn!.streaming, []);
    assert.deepEqual(
      turn!.items.map((i) => (i.kind === 'tool' ? `tool:${i.call.name}:${i.call.status}` : i.kind === 'notice' ? `notice:${i.notice.type}` : `${i.kind}:${i.kind === 'text' ? i.text : ''}`)),
      ['text:Let me run that.', 'tool:bash:done', 'tool:read_file:error', 'notice:sandbox.provisioned', 'text:It printed hi.'],
    );
    const calls = turn!.items.flatMap((i) => (i.kind === 'tool' ? [i.call] : []));
    assert.deepEqual(calls.map((c) => [c.where, c.parallel, c.result?.errorKind]), [['sandbox', true, undefined], [undefined, true, 'tool_error']]);
    assert.deepEqual(transcriptOf(events), t, 'folding all at once gives the same transcript');
  });

  it('passes unknown event types (and data its schema refuses) through untouched, changing nothing else', () => {
    const { events, add } = log();
    add('user.message', { turnId: 't1', content: 'hi' });
    const future = add('workflow.paused', { turnId: 't1', reason: 'a newer daemon said so', nested: { deep: [1, 2] } });
    const malformed = add('tool.result', { turnId: 't1', toolUseId: 'tu1', content: 'not blocks', isError: 'maybe' });
    add('turn.completed', { turnId: 't1', stopReason: 'end_turn' });
    const fold = new TranscriptFold();
    const steps = events.map((e) => fold.event(e));
    assert.deepEqual(brief(steps.flatMap((s) => s.changes)), ['user', 'unknown:workflow.paused', 'unknown:tool.result', 'ended:completed']);
    const unknown = steps[1]!.changes[0]!;
    assert.ok(unknown.kind === 'unknown' && unknown.event === future, 'the very event object, untouched');
    assert.ok(steps[2]!.changes[0]!.kind === 'unknown' && steps[2]!.changes[0]!.event === malformed);
    assert.equal(steps[1]!.event, undefined);
    assert.equal(fold.transcript.next, 4, 'the cursor moves past them');
    assert.deepEqual(fold.transcript.turns[0]!.items, [], 'nothing was made of them');
  });

  it('takes deltas out of order: before their turn is in view, by index, late after the end; and a stream the log contradicts', () => {
    const { events, add } = log();
    const fold = new TranscriptFold();
    // Deltas can overtake the events of their turn (a subscriber still catching up).
    assert.deepEqual(fold.delta(delta('t1', 1, 'second block')), []);
    assert.deepEqual(fold.delta(delta('t1', 0, 'fisrt ')), []);
    assert.deepEqual(brief(fold.event(add('user.message', { turnId: 't1', content: 'go' })).changes), ['user', 'text+~:second block', 'text+~:fisrt ']);
    assert.deepEqual(fold.transcript.turns[0]!.streaming.map((b) => [b.index, b.text]), [[0, 'fisrt '], [1, 'second block']], 'kept in block order');
    fold.event(add('turn.started', { turnId: 't1' }));
    // The first block's stream is not the start of its durable text (fragments lost on the
    // way): that block is shown whole, as a fresh one; the second only adds what it missed.
    const reply = fold.event(
      add('assistant.message', {
        turnId: 't1',
        content: [{ type: 'text', text: 'first block' }, { type: 'text', text: 'second block, complete' }],
        stopReason: 'end_turn',
        usage,
      }),
    );
    assert.deepEqual(brief(reply.changes), ['text+:first block', 'text:, complete']);
    fold.event(add('turn.completed', { turnId: 't1', stopReason: 'end_turn' }));
    assert.deepEqual(fold.delta(delta('t1', 0, 'late')), [], 'a fragment after the end is dropped');
    assert.deepEqual(fold.transcript.turns[0]!.streaming, []);
    assert.deepEqual(brief(fold.events(events)), [], 'events already folded change nothing (a resubscription overlap)');
  });

  it('folds a turn cut by an interrupt: the streamed text goes, open calls end interrupted, the turn ends interrupted', () => {
    const { events, add } = log();
    add('user.message', { turnId: 't1', content: 'slow' });
    add('turn.started', { turnId: 't1' });
    add('model.requested', { turnId: 't1', model: 'm', attempt: 1 });
    add('assistant.message', { turnId: 't1', content: [{ type: 'tool_use', id: 'tu1', name: 'bash', input: { command: 'sleep 100' } }], stopReason: 'tool_use', usage });
    add('tool.started', { turnId: 't1', toolUseId: 'tu1', name: 'bash', input: { command: 'sleep 100' }, where: 'sandbox' });
    const fold = new TranscriptFold();
    fold.events(events);
    assert.equal(transcriptStatus(fold.transcript), 'running');
    const rest = [
      add('tool.result', { turnId: 't1', toolUseId: 'tu1', content: [{ type: 'text', text: 'interrupted before this tool finished' }], isError: true, errorKind: 'interrupted', durationMs: 0 }),
      add('model.requested', { turnId: 't1', model: 'm', attempt: 1 }),
    ];
    fold.events(rest);
    fold.delta(delta('t1', 0, 'I was about to'));
    assert.equal(fold.transcript.turns[0]!.streaming[0]!.text, 'I was about to');
    assert.deepEqual(brief(fold.event(add('turn.interrupted', { turnId: 't1' })).changes), ['ended:interrupted']);
    const turn = fold.transcript.turns[0]!;
    assert.deepEqual(turn.end, { kind: 'interrupted', seq: 7 });
    assert.deepEqual(turn.streaming, [], 'text that never became durable is not kept');
    const call = turn.items.find((i) => i.kind === 'tool');
    assert.ok(call?.kind === 'tool');
    assert.deepEqual([call.call.status, call.call.result?.errorKind], ['error', 'interrupted']);
    assert.equal(transcriptStatus(fold.transcript), 'idle');
  });

  it('folds a permission question answered by another client', () => {
    const { events, add } = log();
    add('user.message', { turnId: 't1', content: 'write' });
    add('turn.started', { turnId: 't1' });
    add('assistant.message', { turnId: 't1', content: [{ type: 'tool_use', id: 'tu1', name: 'write_file', input: { path: 'x' } }], stopReason: 'tool_use', usage });
    add('permission.requested', { turnId: 't1', toolUseId: 'tu1', tool: 'write_file', input: { path: 'x' } });
    const fold = new TranscriptFold();
    assert.deepEqual(brief(fold.events(events)), ['user', 'tool:tu1:announced', 'tool:tu1:asked']);
    assert.equal(transcriptStatus(fold.transcript), 'waiting');
    const answered = fold.event(add('permission.resolved', { toolUseId: 'tu1', decision: 'allow', by: 'agentd-attach (controller)#4' }));
    assert.equal(answered.turn?.turnId, 't1', 'belongs to the turn of its call, though it names none');
    assert.deepEqual(brief(answered.changes), ['tool:tu1:answered']);
    const call = fold.transcript.turns[0]!.items.find((i) => i.kind === 'tool');
    assert.ok(call?.kind === 'tool');
    assert.deepEqual(call.call.permission, { state: 'allow', by: 'agentd-attach (controller)#4' });
    assert.equal(transcriptStatus(fold.transcript), 'running');
    // An answer about a call out of view, naming no turn, belongs nowhere and breaks nothing.
    assert.deepEqual(fold.event(add('permission.resolved', { toolUseId: 'tu_gone', decision: 'deny', by: 'policy' })).changes, []);
  });

  it('folds a network question and the egress decisions of a running tool call as notices of its turn, not as tool calls', () => {
    const { events, add } = log();
    add('user.message', { turnId: 't1', content: 'install' });
    add('turn.started', { turnId: 't1' });
    add('assistant.message', { turnId: 't1', content: [{ type: 'tool_use', id: 'tu1', name: 'bash', input: { command: 'npm i' } }], stopReason: 'tool_use', usage });
    add('tool.started', { turnId: 't1', toolUseId: 'tu1', name: 'bash', input: { command: 'npm i' }, where: 'sandbox' });
    add('permission.requested', { turnId: 't1', toolUseId: 'net_1', tool: 'network', input: { host: 'example.org', port: 443, toolUseId: 'tu1' }, kind: 'network' });
    add('permission.resolved', { turnId: 't1', toolUseId: 'net_1', decision: 'deny', by: 'cli#2' });
    add('network.decided', { host: 'example.org', port: 443, decision: 'deny', reason: 'answered deny by cli#2', via: 'connect', toolUseId: 'tu1' });
    add('network.decided', { host: 'registry.npmjs.org', port: 443, decision: 'allow', reason: 'preset package-registries', via: 'connect', toolUseId: 'tu1' });
    const fold = new TranscriptFold();
    assert.deepEqual(brief(fold.events(events)), ['user', 'tool:tu1:announced', 'tool:tu1:running', 'notice:network.decided', 'notice:network.decided']);
    const items = fold.transcript.turns[0]!.items;
    assert.equal(items.filter((i) => i.kind === 'tool').length, 1, 'the question made no tool call');
    assert.equal(transcriptStatus(fold.transcript), 'running');
  });

  it('puts notices where they happened: in the running turn, or the session (fork, archive, a loss between turns)', () => {
    const { events, add } = log();
    add('session.created', { workspace: '/origin' });
    add('user.message', { turnId: 't1', content: 'a' });
    add('session.forked', { from: 's_origin', at: 2, workspace: '/fork' });
    add('harness.woke', { fromSeq: 3, pendingTurn: 't1' });
    add('model.requested', { turnId: 't1', model: 'm', attempt: 1 });
    add('model.retry', { turnId: 't1', attempt: 1, reason: 'overloaded', delayMs: 20 });
    add('context.compacted', { upToSeq: 1, summary: 'earlier' });
    add('turn.failed', { turnId: 't1', error: 'model unavailable' });
    add('sandbox.lost', { reason: 'killed' });
    add('session.archived', {});
    const t = transcriptOf(events);
    assert.deepEqual(t.forkedFrom, { sessionId: 's_origin', at: 2 });
    assert.equal(t.workspace, '/fork');
    assert.deepEqual(t.notices.map((n) => n.type), ['session.forked', 'sandbox.lost', 'session.archived']);
    assert.deepEqual(
      t.turns[0]!.items.map((i) => (i.kind === 'notice' ? i.notice.type : i.kind)),
      ['harness.woke', 'model.retry', 'context.compacted'],
    );
    assert.deepEqual(t.turns[0]!.end, { kind: 'failed', error: 'model unavailable', seq: 7 });
    assert.equal(transcriptStatus(t), 'archived');
  });

  it('knows a sub-agent\'s parent and the sub-agents a session started, for the chat view (web page, VS Code)', () => {
    const parent = log();
    parent.add('session.created', { workspace: '/w' });
    parent.add('user.message', { turnId: 't1', content: 'split the work' });
    parent.add('assistant.message', {
      turnId: 't1',
      content: [
        { type: 'tool_use', id: 'toolu_a', name: 'agent', input: { prompt: 'a' } },
        { type: 'tool_use', id: 'toolu_b', name: 'agent', input: { prompt: 'b' } },
      ],
      stopReason: 'tool_use',
      usage,
    });
    parent.add('tool.started', { turnId: 't1', toolUseId: 'toolu_a', name: 'agent', input: { prompt: 'a' }, where: 'daemon', childSessionId: 's_childaaaaaaa' });
    parent.add('tool.started', { turnId: 't1', toolUseId: 'toolu_b', name: 'agent', input: { prompt: 'b' }, where: 'daemon', childSessionId: 's_childbbbbbbb' });
    const model = new ChatModel('s_parentaaaaaa');
    model.applyEvents(parent.events);
    assert.deepEqual(model.view().children, ['s_childaaaaaaa', 's_childbbbbbbb']);
    assert.equal(model.view().parent, undefined);
    const child = log();
    child.add('session.created', { workspace: '/w', parent: { sessionId: 's_parentaaaaaa', toolUseId: 'toolu_a' } });
    const childModel = new ChatModel('s_childaaaaaaa');
    childModel.applyEvents(child.events);
    assert.deepEqual(childModel.view().parent, { sessionId: 's_parentaaaaaa', toolUseId: 'toolu_a' });
    assert.deepEqual(childModel.view().children, []);
  });

  it('bundles for a browser: no Node module in the fold', async () => {
    const entry = fileURLToPath(new URL('../clients/lib/transcript.js', import.meta.url));
    const result = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true });
    assert.deepEqual(result.errors, []);
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(!inputs.some((i) => i.startsWith('node:') || /vscode-jsonrpc/.test(i)), inputs.join('\n'));
  });
});
