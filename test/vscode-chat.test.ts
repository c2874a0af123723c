/**
 * The extension's chat view model and approvals, built from a real session through
 * `agentd stdio`: streaming deltas, a tool call with its input and result, a
 * sandbox_lost result marked as such, and a permission question withdrawn when
 * another client answers first.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ApprovalsState, type ApprovalChange } from '../clients/vscode/src/core/approvals.js';
import { ChatModel, type ChatItem, type ChatView } from '../clients/lib/chat-view.js';
import { AgentdConnection } from '../clients/vscode/src/core/connection.js';
import { renderConversation } from '../clients/vscode/src/core/render.js';
import { SessionAttach, SessionCreate, SessionPrompt } from '../protocol/index.js';
import { answeringClient, settle, startAgentRig, workspace, type AgentRig } from './support/agent.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { AGENTD_BIN } from './support/daemon.js';
import { until } from './support/until.js';

/** `agentd stdio` for the rig's data dir, as the extension spawns it. */
function bridgeFor(home: string) {
  return { command: process.execPath, args: [AGENTD_BIN, 'stdio'], env: { ...process.env, AGENTD_HOME: home } };
}

type Tool = Extract<ChatItem, { kind: 'tool' }>;

describe('vscode core: chat view model and approvals on a real session', () => {
  let rig: AgentRig;
  let conn: AgentdConnection;
  const approvals = new ApprovalsState();
  before(async () => {
    rig = await startAgentRig();
    conn = new AgentdConnection({ bridge: bridgeFor(rig.daemon.layout.home), clientName: 'vscode', onPermissionRequest: approvals.handler });
    approvals.withdrawOnDisconnect(conn);
    conn.start();
  });
  after(async () => {
    await conn.dispose();
    await rig.dispose();
  });

  it('renders streaming text, a tool call with input and result, and a sandbox_lost error', async () => {
    const { sessionId } = await conn.request(SessionCreate, { workspace: workspace(), title: 'chat', permissions: { default: 'allow' } });
    const model = new ChatModel(sessionId);
    const snapshots: ChatView[] = [];
    conn.follow(sessionId, 0, {
      onEvents: (events) => model.applyEvents(events),
      onDelta: (delta) => {
        model.applyDelta(delta);
        snapshots.push(model.view());
      },
    });
    rig.emulator.script([
      reply.toolUse({ name: 'bash', input: { command: 'echo hello from the sandbox' } }, { text: 'Let me run that.' }),
      reply.toolUse({ name: 'bash', input: { command: 'kill -KILL $PPID; sleep 5' } }),
      reply.text('The sandbox died; <b>stopping</b> here.', { chunks: 6, chunkDelayMs: 30 }),
    ]);
    await conn.request(SessionPrompt, { sessionId, content: 'run echo' });
    const log = await settle(await rig.daemon.client(), sessionId);
    await until(() => model.nextSeq === log.length, 'the model to reach the head');

    const streamed = snapshots.map((s) => s.items.filter((i) => i.kind === 'assistant' && i.streaming)).filter((a) => a.length > 0);
    assert.ok(streamed.length >= 2, 'streaming text was shown as it came');
    const final = 'The sandbox died; <b>stopping</b> here.';
    for (const [item] of streamed) assert.ok(final.startsWith((item as { text: string }).text) || 'Let me run that.'.startsWith((item as { text: string }).text));

    const view = model.view();
    assert.equal(view.title, 'chat');
    assert.equal(view.status, 'idle');
    assert.ok(!view.items.some((i) => 'streaming' in i && i.streaming), 'no streaming leftovers once the turn is durable');
    assert.deepEqual(view.items.filter((i) => i.kind === 'user' || i.kind === 'assistant').map((i) => [i.kind, (i as { text: string }).text]), [
      ['user', 'run echo'],
      ['assistant', 'Let me run that.'],
      ['assistant', final],
    ]);
    const tools = view.items.filter((i): i is Tool => i.kind === 'tool');
    assert.equal(tools.length, 2);
    assert.equal(tools[0]!.name, 'bash');
    assert.match(tools[0]!.input, /echo hello from the sandbox/);
    assert.equal(tools[0]!.state, 'done');
    assert.match(tools[0]!.result!.text, /hello from the sandbox/);
    assert.equal(tools[1]!.state, 'error');
    assert.equal(tools[1]!.result!.errorKind, 'sandbox_lost');
    assert.ok(view.items.some((i) => i.kind === 'notice' && i.text.startsWith('Sandbox ready')));

    const html = renderConversation(view);
    assert.match(html, /<details class="tool error[^"]*sandbox_lost"[^>]* open>/, 'the failed call is expanded and marked');
    assert.match(html, /<span class="badge error">Sandbox lost<\/span>/);
    assert.match(html, /&lt;b&gt;stopping&lt;\/b&gt;/, 'model text is escaped');
    assert.doesNotMatch(html, /<b>stopping/);
  });

  it('shows a permission question and withdraws it when another client answers first', async () => {
    const { sessionId } = await conn.request(SessionCreate, { workspace: workspace(), permissions: { default: 'ask' } });
    const changes: ApprovalChange[] = [];
    const sub = approvals.onChange((c) => changes.push(c));
    let shown!: () => void;
    const shownInVscode = new Promise<void>((r) => (shown = r));
    approvals.onChange((c) => c.kind === 'added' && shown());
    // The other client answers only once the question is on screen in "VS Code".
    const cli = await answeringClient(rig.daemon.layout, 'cli', async () => {
      await shownInVscode;
      return 'allow';
    });
    await cli.request(SessionAttach, { sessionId, role: 'controller' });
    try {
      const model = new ChatModel(sessionId);
      conn.follow(sessionId, 0, { onEvents: (events) => model.applyEvents(events) });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo approved' } }), reply.text('ok')]);
      await conn.request(SessionPrompt, { sessionId, content: 'needs approval' });
      const log = await settle(cli, sessionId);
      await until(() => changes.some((c) => c.kind === 'withdrawn'), 'the question to be withdrawn');
      assert.deepEqual(changes.map((c) => [c.kind, c.approval.summary]), [
        ['added', 'bash: echo approved'],
        ['withdrawn', 'bash: echo approved'],
      ]);
      assert.deepEqual(approvals.pending(), []);
      assert.equal(approvals.answer(changes[0]!.approval.id, 'deny'), false, 'a withdrawn question takes no answer');
      const resolved = log.find((e) => e.type === 'permission.resolved')!;
      assert.match(String(resolved.data.by), /^cli#/);
      await until(() => model.nextSeq === log.length, 'the model to reach the head');
      const tool = model.view().items.find((i): i is Tool => i.kind === 'tool')!;
      assert.deepEqual(tool.permission, { state: 'allow', by: resolved.data.by });
      assert.equal(tool.state, 'done');
    } finally {
      sub.dispose();
      cli.close();
    }
  });

  it('withdraws a question when the bridge dies, is asked again on the new connection, and the answer counts', async () => {
    const { sessionId } = await conn.request(SessionCreate, { workspace: workspace(), permissions: { default: 'ask' } });
    const changes: ApprovalChange[] = [];
    const sub = approvals.onChange((c) => changes.push(c));
    try {
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo asked twice' } }), reply.text('ok')]);
      await conn.request(SessionPrompt, { sessionId, content: 'go' });
      await until(() => changes.some((c) => c.kind === 'added'), 'the question');
      process.kill(conn.bridgePid!, 'SIGKILL');
      await until(() => changes.filter((c) => c.kind === 'added').length === 2, 'the question asked again after the reconnect');
      assert.deepEqual(changes.map((c) => c.kind), ['added', 'withdrawn', 'added']);
      assert.equal(approvals.pending().length, 1);
      assert.ok(approvals.answer(approvals.pending()[0]!.id, 'allow'));
      const log = await settle(await rig.daemon.client(), sessionId);
      assert.match(String(log.find((e) => e.type === 'permission.resolved')!.data.by), /^vscode#/);
      assert.equal(log.find((e) => e.type === 'tool.result')!.data.isError, false);
    } finally {
      sub.dispose();
    }
  });

  it('sends the user’s answer when VS Code answers first (always allow)', async () => {
    const { sessionId } = await conn.request(SessionCreate, { workspace: workspace(), permissions: { default: 'ask' } });
    const sub = approvals.onChange((c) => {
      if (c.kind === 'added') approvals.answer(c.approval.id, 'allow_always');
    });
    try {
      rig.emulator.script([
        reply.toolUse({ name: 'bash', input: { command: 'echo one' } }),
        reply.toolUse({ name: 'bash', input: { command: 'echo two' } }),
        reply.text('done'),
      ]);
      await conn.request(SessionPrompt, { sessionId, content: 'go' });
      const log = await settle(await rig.daemon.client(), sessionId);
      const resolved = log.filter((e) => e.type === 'permission.resolved');
      assert.equal(resolved.length, 1, 'always allow covers the second call');
      assert.equal(resolved[0]!.data.decision, 'allow_always');
      assert.match(String(resolved[0]!.data.by), /^vscode#/);
      assert.deepEqual(log.filter((e) => e.type === 'tool.result').map((e) => e.data.isError), [false, false]);
    } finally {
      sub.dispose();
    }
  });
});
