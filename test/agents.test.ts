/** Sub-agents: the `agent` tool starts child sessions that share the parent's sandbox, run in parallel, stop with it and survive kill -9. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentdError, DaemonStatus, ErrorCode, SessionAttach, SessionDelete, SessionGet, SessionInterrupt, SessionList, SessionPrompt, SessionSetBudget, SessionSetNetwork, type Event, type SessionCreateParams, type Usage } from '../protocol/index.js';
import { connect, type AgentdClient } from '../clients/lib/index.js';
import { until } from './support/until.js';
import { runAgentd, startDaemon } from './support/daemon.js';
import { LevelSessionLog } from '../daemon/log/index.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { reply, type ModelEmulator, type RecordedRequest, type Reply } from '../clients/cli/demo/model-emulator.js';
import { API_KEY, assertLogInvariants, createSession, ofType, settle, startAgentRig, waitForEvent, type AgentRig } from './support/agent.js';

type Body = { tools?: Array<{ name: string }>; messages: Array<{ role: string; content: Array<{ type: string; text?: string }> }> };
const body = (req: RecordedRequest) => req.body as Body;
/** The text that opened the conversation: which session (parent or which child) a request is from. */
const opening = (req: RecordedRequest) => body(req).messages[0]?.content.find((b) => b.type === 'text')?.text ?? '';
/** Replies the model gave so far in this conversation. */
const steps = (req: RecordedRequest) => body(req).messages.filter((m) => m.role === 'assistant').length;
const resultText = (e: Event) => JSON.stringify(e.data.content);
/** Every token a call was billed for, as a budget counts them. */
const tokens = (u: Usage) => u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;

/** The sub-agent is named in the parent's log a moment before its session exists. */
function childCreated(client: AgentdClient, sessionId: string): Promise<unknown> {
  return until(() => client.request(SessionGet, { sessionId }).then(() => true, () => false), `sub-agent ${sessionId} to exist`);
}

/** One reply function per expected request: each picks its reply by the conversation it is in. */
function routed(count: number, route: (req: RecordedRequest) => Reply | Promise<Reply>): Reply[] {
  return Array.from({ length: count }, () => route);
}

/**
 * A parent (made with `params`) whose one `agent` call's sub-agent has run `command` and
 * waits on its second model call, which hangs: where the crash and hand-over tests cut in.
 */
async function childMidTurn(
  client: AgentdClient,
  emulator: ModelEmulator,
  prompts: { parent: string; child: string; command: string },
  params: Partial<SessionCreateParams> = {},
): Promise<{ parent: string; childId: string }> {
  const parent = await createSession(client, params);
  emulator.script(
    routed(3, (req) =>
      opening(req) === prompts.parent
        ? reply.toolUse({ name: 'agent', input: { prompt: prompts.child } })
        : steps(req) === 0 ? reply.toolUse({ name: 'bash', input: { command: prompts.command } }) : reply.hang(),
    ),
  );
  await client.request(SessionPrompt, { sessionId: parent, content: prompts.parent });
  const started = await waitForEvent(client, parent, (e) => e.type === 'tool.started' && e.data.name === 'agent');
  const childId = String(started.data.childSessionId);
  await childCreated(client, childId);
  await waitForEvent(client, childId, (e) => e.type === 'tool.result');
  await emulator.waitFor(() => emulator.requests.filter((r) => opening(r) === prompts.child).length === 2, 30_000);
  return { parent, childId };
}

/** A parent whose one `agent` call's sub-agent is in its first model call, which hangs. */
async function childHanging(client: AgentdClient, emulator: ModelEmulator, prompts: { parent: string; child: string }): Promise<{ parent: string; childId: string }> {
  const parent = await createSession(client);
  emulator.script(routed(2, (req) => (opening(req) === prompts.parent ? reply.toolUse({ name: 'agent', input: { prompt: prompts.child } }) : reply.hang())));
  await client.request(SessionPrompt, { sessionId: parent, content: prompts.parent });
  const started = await waitForEvent(client, parent, (e) => e.type === 'tool.started' && e.data.name === 'agent');
  const childId = String(started.data.childSessionId);
  await childCreated(client, childId);
  await waitForEvent(client, childId, (e) => e.type === 'model.requested');
  return { parent, childId };
}

/** Interrupts the parent: the sub-agent's turn is interrupted too, and the agent call gets one interrupted result. */
async function interruptTree(client: AgentdClient, parent: string, childId: string): Promise<void> {
  assert.deepEqual(await client.request(SessionInterrupt, { sessionId: parent }), { interrupted: true });
  const events = await settle(client, parent);
  const childEvents = await settle(client, childId);
  assert.deepEqual(assertLogInvariants(events), []);
  assert.deepEqual(assertLogInvariants(childEvents), []);
  assert.equal(ofType(childEvents, 'turn.interrupted').length, 1, 'the sub-agent was interrupted where it ran');
  assert.equal(ofType(events, 'turn.interrupted').length, 1);
  const results = ofType(events, 'tool.result');
  assert.equal(results.length, 1);
  assert.equal(results[0]!.data.errorKind, 'interrupted');
}

describe('sub-agents', () => {
  let rig: AgentRig;
  before(async () => {
    rig = await startAgentRig();
  });
  after(() => rig.dispose());

  it('runs two sub-agents in parallel in the parent’s sandbox: both write, the parent reads both', async () => {
    const client = await rig.daemon.client();
    const parent = await createSession(client, { title: 'parent' });
    const sawChildB = () => rig.emulator.requests.some((r) => opening(r) === 'write b.txt');
    rig.emulator.script(
      routed(7, async (req) => {
        const text = opening(req);
        if (text === 'split the work') {
          if (steps(req) === 0) return reply.toolUse([{ name: 'agent', input: { prompt: 'write a.txt', title: 'A' } }, { name: 'agent', input: { prompt: 'write b.txt', title: 'B' } }]);
          if (steps(req) === 1) return reply.toolUse({ name: 'bash', input: { command: 'cat a.txt b.txt' } });
          return reply.text('both files are there');
        }
        const name = text === 'write a.txt' ? 'a' : 'b';
        // A waits for B's first call: were the sub-agents run one after the other, this would never return.
        if (name === 'a' && steps(req) === 0) await rig.emulator.waitFor(sawChildB, 30_000);
        if (steps(req) === 0) return reply.toolUse({ name: 'write_file', input: { path: `${name}.txt`, content: `from ${name}\n` } });
        return reply.text(`wrote ${name}.txt`);
      }),
    );
    await client.request(SessionPrompt, { sessionId: parent, content: 'split the work' });
    const events = await settle(client, parent);
    assert.deepEqual(assertLogInvariants(events), []);
    const started = ofType(events, 'tool.started').filter((e) => e.data.name === 'agent');
    assert.equal(started.length, 2);
    const results = ofType(events, 'tool.result');
    const byCall = new Map(results.map((r) => [String(r.data.toolUseId), r]));
    assert.deepEqual(started.map((s) => resultText(byCall.get(String(s.data.toolUseId))!)).sort(), [JSON.stringify([{ type: 'text', text: 'wrote a.txt' }]), JSON.stringify([{ type: 'text', text: 'wrote b.txt' }])].sort());
    const cat = results.at(-1)!;
    assert.match(resultText(cat), /from a\\nfrom b/);

    const info = await client.request(SessionGet, { sessionId: parent });
    const children = started.map((s) => String(s.data.childSessionId));
    assert.deepEqual(info.children, children);
    for (const [i, childId] of children.entries()) {
      const child = await client.request(SessionGet, { sessionId: childId });
      assert.deepEqual(child.parent, { sessionId: parent, toolUseId: started[i]!.data.toolUseId });
      assert.equal(child.workspace, info.workspace);
      const childEvents = await settle(client, childId);
      assert.deepEqual(assertLogInvariants(childEvents), []);
      assert.equal(ofType(childEvents, 'sandbox.provisioned').length, 0, 'a sub-agent provisions no sandbox of its own');
    }
    assert.equal(ofType(events, 'sandbox.provisioned').length, 1, 'one sandbox for the parent and both sub-agents');
    // The sub-agents' usage is the parent's: in the agent calls' results, its turn and its session.
    const out = (list: Event[]) => list.reduce((n, e) => n + (e.data.usage as { outputTokens: number }).outputTokens, 0);
    let childOut = 0;
    for (const childId of children) childOut += out(ofType(await settle(client, childId), 'turn.completed'));
    assert.ok(childOut > 0);
    assert.equal(out(started.map((s) => byCall.get(String(s.data.toolUseId))!)), childOut);
    const own = out(ofType(events, 'assistant.message'));
    assert.equal(out(ofType(events, 'turn.completed')), own + childOut);
    assert.equal(info.usage.outputTokens, own + childOut);
    const listed = (await client.request(SessionList, {})).sessions.filter((s) => s.parent?.sessionId === parent);
    assert.equal(listed.length, 2);
    // As a user sees the tree in the CLI.
    const shown = await runAgentd(rig.daemon.layout, ['sessions']);
    assert.match(shown.stdout, new RegExp(`${parent} .*\\(2 sub-agents: ${children.join(' ')}\\)`));
    for (const childId of children) assert.match(shown.stdout, new RegExp(`${childId} .*\\(sub-agent of ${parent}\\)`));
    const log = await runAgentd(rig.daemon.layout, ['log', parent]);
    for (const childId of children) assert.match(log.stdout, new RegExp(`tool\\.started +agent .*→ sub-agent ${childId}`));
  });

  it('gives a sub-agent only the tools asked for: a tool the parent has is refused to it, and it gets no agent tool', async () => {
    const client = await rig.daemon.client();
    const parent = await createSession(client);
    rig.emulator.script(
      routed(4, (req) => {
        if (opening(req) === 'delegate') {
          return steps(req) === 0 ? reply.toolUse({ name: 'agent', input: { prompt: 'only read', tools: ['read_file'] } }) : reply.text('delegated');
        }
        return steps(req) === 0 ? reply.toolUse({ name: 'bash', input: { command: 'touch forbidden' } }) : reply.text('could not');
      }),
    );
    const start = rig.emulator.requests.length;
    await client.request(SessionPrompt, { sessionId: parent, content: 'delegate' });
    const events = await settle(client, parent);
    const requests = rig.emulator.requests.slice(start);
    const parentTools = body(requests.find((r) => opening(r) === 'delegate')!).tools!.map((t) => t.name);
    assert.ok(parentTools.includes('bash') && parentTools.includes('agent'));
    const childRequest = requests.find((r) => opening(r) === 'only read')!;
    assert.deepEqual(body(childRequest).tools!.map((t) => t.name), ['read_file']);
    const childId = String(ofType(events, 'tool.started')[0]!.data.childSessionId);
    const childEvents = await settle(client, childId);
    const refused = ofType(childEvents, 'tool.result')[0]!;
    assert.equal(refused.data.isError, true);
    assert.match(resultText(refused), /unknown tool bash/);
    assert.equal(ofType(childEvents, 'sandbox.provisioned').length + ofType(events, 'sandbox.provisioned').length, 0, 'bash never ran');

    // Deleting the parent deletes its sub-agents with it.
    assert.deepEqual(await client.request(SessionDelete, { sessionId: parent }), { deleted: [childId, parent] });
    await assert.rejects(client.request(SessionGet, { sessionId: childId }), (e: unknown) => e instanceof AgentdError && e.code === ErrorCode.SessionNotFound);
  });

  it('shares one budget across the tree: two sub-agents that each fit what is left, but not both, stop within one model call of it', async () => {
    const client = await rig.daemon.client();
    /** Each sub-agent makes three calls (two tool calls, then its answer); the parent two. */
    const tree = (prompt: string) =>
      routed(12, (req) => {
        const text = opening(req);
        if (text === prompt) return steps(req) === 0 ? reply.toolUse([{ name: 'agent', input: { prompt: 'spend a' } }, { name: 'agent', input: { prompt: 'spend b' } }]) : reply.text('the tree is done');
        return steps(req) < 2 ? reply.toolUse({ name: 'bash', input: { command: `echo ${text} ${steps(req)}` } }) : reply.text(`${text}: done`);
      });
    const spentBy = async (sessionId: string) => {
      const events = await settle(client, sessionId);
      const calls = ofType(events, 'assistant.message').map((e) => tokens(e.data.usage as Usage));
      const children = ofType(events, 'tool.started').flatMap((e) => (e.data.childSessionId ? [String(e.data.childSessionId)] : []));
      return { events, calls, children };
    };
    // What the same tree uses with no budget: the figures the budget below is made of.
    const free = await createSession(client);
    rig.emulator.script(tree('spend as a tree'));
    await client.request(SessionPrompt, { sessionId: free, content: 'spend as a tree' });
    const measured = await spentBy(free);
    const childCalls = (await Promise.all(measured.children.map(spentBy))).map((c) => c.calls);
    assert.deepEqual(childCalls.map((c) => c.length), [3, 3]);
    const child = childCalls[0]!.reduce((a, b) => a + b, 0);
    const maxCall = Math.max(...measured.calls, ...childCalls.flat());
    // What is left after the parent's first call holds one sub-agent's work and half a call more: not both sub-agents'.
    const maxTokens = measured.calls[0]! + child + Math.floor(maxCall / 2);

    const parent = await createSession(client, { budget: { maxTokens } });
    rig.emulator.script(tree('spend as a tree'));
    await client.request(SessionPrompt, { sessionId: parent, content: 'spend as a tree' });
    const run = await spentBy(parent);
    assert.deepEqual(assertLogInvariants(run.events), []);
    assert.equal(ofType(run.events, 'turn.failed')[0]?.data.reason, 'budget_exceeded', 'the parent stopped at the budget');
    const children = await Promise.all(run.children.map(spentBy));
    assert.ok(children.some((c) => ofType(c.events, 'turn.failed')[0]?.data.reason === 'budget_exceeded'), 'a sub-agent stopped at the budget');
    const total = [run, ...children].flatMap((s) => s.calls).reduce((a, b) => a + b, 0);
    assert.ok(total >= maxTokens, `the tree spent ${total}: the budget ${maxTokens} was reached`);
    assert.ok(total <= maxTokens + maxCall, `the tree spent ${total}: no more than one call (${maxCall}) past its budget ${maxTokens}`);
    // The ledger in the parent's log: every reservation settled, what was settled is what the calls used.
    const settled = ofType(run.events, 'budget.settled');
    assert.deepEqual(ofType(run.events, 'budget.reserved').map((e) => e.data.key).sort(), settled.map((e) => e.data.key).sort());
    assert.equal(settled.reduce((n, e) => n + Number(e.data.tokens), 0), total);
    for (const id of run.children) assert.equal((await client.request(SessionGet, { sessionId: id })).budget, undefined, 'a sub-agent has no budget of its own');
    await assert.rejects(client.request(SessionSetBudget, { sessionId: run.children[0]!, budget: { maxTokens: 1 } }), (e: unknown) => e instanceof AgentdError && e.code === ErrorCode.InvalidParams);
    // Nor a network of its own: its tools run in its parent's sandbox, behind its parent's policy.
    await assert.rejects(
      client.request(SessionSetNetwork, { sessionId: run.children[0]!, network: { default: 'allow' } }),
      (e: unknown) => e instanceof AgentdError && e.code === ErrorCode.InvalidParams && /its parent's sandbox/.test(e.message),
    );
  });

  it('interrupting the parent interrupts its sub-agent; the agent call gets one interrupted result', async () => {
    const client = await rig.daemon.client();
    const { parent, childId } = await childHanging(client, rig.emulator, { parent: 'wait on a child', child: 'hang' });
    await interruptTree(client, parent, childId);
  });

  it('asks a sub-agent’s permission questions of the parent’s controllers, naming the parent', async () => {
    const layout = rig.daemon.layout;
    const asked: Array<{ sessionId: string; parentSessionId?: string; tool: string }> = [];
    const controller = await connect({
      layout,
      autostart: false,
      clientName: 'parent-controller',
      onPermissionRequest: async (q) => (asked.push({ sessionId: q.sessionId, ...(q.parentSessionId ? { parentSessionId: q.parentSessionId } : {}), tool: q.tool }), { decision: 'allow' }),
    });
    try {
      const parent = await createSession(controller, { permissions: { default: 'ask', allow: ['agent'] } });
      rig.emulator.script(
        routed(4, (req) =>
          opening(req) === 'ask through me'
            ? steps(req) === 0 ? reply.toolUse({ name: 'agent', input: { prompt: 'run a command' } }) : reply.text('ok')
            : steps(req) === 0 ? reply.toolUse({ name: 'bash', input: { command: 'echo asked' } }) : reply.text('ran it'),
        ),
      );
      await controller.request(SessionAttach, { sessionId: parent, role: 'controller' });
      await controller.request(SessionPrompt, { sessionId: parent, content: 'ask through me' });
      const events = await settle(controller, parent);
      const childId = String(ofType(events, 'tool.started')[0]!.data.childSessionId);
      assert.deepEqual(asked, [{ sessionId: childId, parentSessionId: parent, tool: 'bash' }]);
      assert.match(resultText(ofType(events, 'tool.result')[0]!), /ran it/);
    } finally {
      controller.close();
    }
  });
});

describe('sub-agents across kill -9 of the daemon', () => {
  it('carries the sub-agent on after a restart: no tool twice, no second reply, one result for the parent’s call', async () => {
    const rig = await startAgentRig();
    try {
      const client = await rig.daemon.client();
      // The sub-agent ran its tool and is waiting on its second model call: kill the daemon there.
      const { parent, childId } = await childMidTurn(client, rig.emulator, { parent: 'delegate and crash', child: 'work, then wait', command: 'echo once >> ran.txt' });
      rig.emulator.script(routed(2, (req) => (opening(req) === 'work, then wait' ? reply.text('the child is done') : reply.text('the parent is done'))));
      const daemon = await rig.crashAndRestart();
      const again = await daemon.client();
      const events = await settle(again, parent);
      const childEvents = await settle(again, childId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.deepEqual(assertLogInvariants(childEvents), []);
      assert.equal(ofType(childEvents, 'harness.woke').length, 1);
      assert.equal(ofType(childEvents, 'tool.result').length, 1, 'the sub-agent’s tool ran once');
      assert.equal(ofType(childEvents, 'turn.completed').length, 1);
      const results = ofType(events, 'tool.result');
      assert.equal(results.length, 1, 'one result for the agent call');
      assert.match(resultText(results[0]!), /the child is done/);
      assert.equal(ofType(events, 'turn.completed').length, 1);
      const child = await again.request(SessionGet, { sessionId: childId });
      assert.equal(child.status, 'idle');
      assert.equal(readFileSync(join(child.workspace, 'ran.txt'), 'utf8'), 'once\n');
    } finally {
      await rig.dispose();
    }
  });
});

describe('a session tree’s budget across kill -9 of the daemon', () => {
  it('rebuilds the ledger from the root’s log: a reservation cut off by the crash is settled once, the tree carries on within its budget', async () => {
    const rig = await startAgentRig();
    try {
      const client = await rig.daemon.client();
      const prompts = { parent: 'budgeted crash', child: 'hang on a budget', command: 'echo before the crash' };
      const { parent, childId } = await childMidTurn(client, rig.emulator, prompts, { budget: { maxTokens: 1_000_000 } });
      // The sub-agent's second call holds its reservation in the parent's log when the daemon dies.
      const cut = await waitForEvent(client, parent, (e) => e.type === 'budget.reserved' && String(e.data.key).endsWith(':1'));
      rig.emulator.script(routed(2, (req) => (opening(req) === 'hang on a budget' ? reply.text('the child is done') : reply.text('the parent is done'))));
      const again = await (await rig.crashAndRestart()).client();
      const events = await settle(again, parent);
      const childEvents = await settle(again, childId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.equal(ofType(events, 'turn.completed').length, 1);
      assert.equal(ofType(childEvents, 'turn.completed').length, 1);
      const settled = ofType(events, 'budget.settled');
      const open = new Set<string>();
      for (const e of events) {
        if (e.type === 'budget.reserved') open.add(String(e.data.key));
        if (e.type === 'budget.settled') assert.ok(open.delete(String(e.data.key)), `${String(e.data.key)} settled once per reservation`);
      }
      assert.deepEqual([...open], [], 'no reservation left open');
      const used = [...ofType(events, 'assistant.message'), ...ofType(childEvents, 'assistant.message')].reduce((n, e) => n + tokens(e.data.usage as Usage), 0);
      const spent = settled.reduce((n, e) => n + Number(e.data.tokens), 0);
      // The cut-off call counts either as the call made again under its reservation, or in full and again.
      assert.ok(spent === used || spent === used + Number(cut.data.tokens), `spent ${spent}: what the calls used (${used}), or that and the cut-off reservation`);
    } finally {
      await rig.dispose();
    }
  });
});

describe('sub-agents across kill -9 at the other recovery points (the log as the dead daemon left it)', () => {
  /** A parent whose last reply asked for one agent call, as logged up to tool.started; the daemon is dead. */
  async function parentLeftAt(rig: AgentRig, childSessionId: string): Promise<{ parent: string; toolUseId: string; workspace: string }> {
    const client = await rig.daemon.client();
    const parent = await createSession(client);
    const { workspace } = await client.request(SessionGet, { sessionId: parent });
    client.close();
    await rig.daemon.kill('SIGKILL');
    const turnId = 't_crashagentcall01';
    const toolUseId = 'toolu_crash_agent_01';
    const input = { prompt: 'finish the job' };
    const log = await LevelSessionLog.open(rig.daemon.layout.db);
    try {
      await log.append(parent, [
        { type: 'user.message', data: { turnId, content: 'delegate' } },
        { type: 'turn.started', data: { turnId } },
        { type: 'model.requested', data: { turnId, model: 'claude-sonnet-5-5', attempt: 1 } },
        { type: 'assistant.message', data: { turnId, content: [{ type: 'tool_use', id: toolUseId, name: 'agent', input }], stopReason: 'tool_use', usage: NO_USAGE } },
        { type: 'tool.started', data: { turnId, toolUseId, name: 'agent', input, where: 'daemon', childSessionId } },
      ], { status: 'running', runningTurn: turnId, children: [childSessionId] });
    } finally {
      await log.close();
    }
    return { parent, toolUseId, workspace };
  }
  const NO_USAGE = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };

  async function restart(rig: AgentRig): Promise<AgentdClient> {
    rig.daemon = await startDaemon({ layout: rig.daemon.layout, env: { ANTHROPIC_BASE_URL: rig.emulator.url, ANTHROPIC_API_KEY: API_KEY } });
    return rig.daemon.client();
  }

  it('creates the sub-agent once when the daemon died after naming it and before creating it', async () => {
    const rig = await startAgentRig();
    try {
      const childId = 's_00crashchild0000001';
      const { parent } = await parentLeftAt(rig, childId);
      rig.emulator.script(routed(2, (req) => (opening(req) === 'finish the job' ? reply.text('the job is finished') : reply.text('the parent heard it'))));
      const client = await restart(rig);
      const events = await settle(client, parent);
      assert.deepEqual(assertLogInvariants(events), []);
      const results = ofType(events, 'tool.result');
      assert.equal(results.length, 1);
      assert.match(resultText(results[0]!), /the job is finished/);
      const child = await client.request(SessionGet, { sessionId: childId });
      assert.deepEqual(child.parent, { sessionId: parent, toolUseId: 'toolu_crash_agent_01' });
      assert.equal(ofType(await settle(client, childId), 'user.message').length, 1, 'created once');
    } finally {
      await rig.dispose();
    }
  });

  it('takes the result of a sub-agent that had finished when the daemon died, without running it again', async () => {
    const rig = await startAgentRig();
    try {
      const childId = 's_00crashchild0000002';
      const { parent, toolUseId, workspace } = await parentLeftAt(rig, childId);
      const turnId = `t_agent_${toolUseId}`;
      const log = await LevelSessionLog.open(rig.daemon.layout.db);
      try {
        const now = Date.now();
        const link = { sessionId: parent, toolUseId };
        await log.create(
          { sessionId: childId, createdAt: now, updatedAt: now, workspace, status: 'idle', usage: NO_USAGE, config: { permissions: { default: 'allow' }, tools: ['bash'] }, parent: link },
          [
            { type: 'session.created', data: { workspace, tools: ['bash'], parent: link } },
            { type: 'user.message', data: { turnId, content: 'finish the job' } },
            { type: 'turn.started', data: { turnId } },
            { type: 'model.requested', data: { turnId, model: 'claude-sonnet-5-5', attempt: 1 } },
            { type: 'assistant.message', data: { turnId, content: [{ type: 'text', text: 'finished before the crash' }], stopReason: 'end_turn', usage: NO_USAGE } },
            { type: 'turn.completed', data: { turnId, stopReason: 'end_turn' } },
          ],
        );
      } finally {
        await log.close();
      }
      rig.emulator.script(routed(1, () => reply.text('the parent heard it')));
      const start = rig.emulator.requests.length;
      const client = await restart(rig);
      const events = await settle(client, parent);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.match(resultText(ofType(events, 'tool.result')[0]!), /finished before the crash/);
      assert.equal(ofType(events, 'tool.result').length, 1);
      assert.deepEqual(rig.emulator.requests.slice(start).map(opening), ['delegate'], 'only the parent called the model');
      assert.equal(ofType(await settle(client, childId), 'assistant.message').length, 1);
    } finally {
      await rig.dispose();
    }
  });
});

describe('sub-agents on a PostgreSQL cluster', () => {
  /**
   * Daemon 0 runs no sub-agents (AGENTD_SUBAGENTS=elsewhere) and takes the parent (it is
   * prompted there, and a new session is taken up elsewhere only once left untouched for a
   * lease time): every sub-agent runs on another daemon, in every run.
   */
  async function splitCluster(size: number): Promise<{ cluster: Cluster; clients: AgentdClient[]; ids: string[] }> {
    const cluster = await startCluster(0, { leaseMs: 2500 });
    await cluster.add({ AGENTD_SUBAGENTS: 'elsewhere' });
    for (let i = 1; i < size; i++) await cluster.add();
    const clients = await Promise.all(cluster.daemons.map((d) => d.client()));
    const ids = await Promise.all(clients.map(async (c) => (await c.request(DaemonStatus, {})).daemonId));
    return { cluster, clients, ids };
  }

  it('runs the sub-agent on another daemon than its parent; kill -9 of that daemon hands it over; the parent gets one result', async () => {
    const { cluster, clients, ids } = await splitCluster(3);
    try {
      const ca = clients[0]!;
      const { parent, childId } = await childMidTurn(ca, cluster.emulator, { parent: 'delegate on a cluster', child: 'work on a cluster', command: 'echo once >> ran.txt' });
      const childOn = (await ca.request(SessionGet, { sessionId: childId })).runningOn!;
      assert.equal((await ca.request(SessionGet, { sessionId: parent })).runningOn, ids[0], 'the parent runs where it was prompted');
      const victim = ids.indexOf(childOn);
      assert.ok(victim > 0, `the sub-agent runs on another daemon of the cluster (${childOn})`);
      cluster.emulator.script(routed(2, (req) => (opening(req) === 'work on a cluster' ? reply.text('the child is done elsewhere') : reply.text('the parent is done'))));
      await cluster.daemons[victim]!.kill('SIGKILL');
      const events = await settle(ca, parent);
      const childEvents = await settle(ca, childId);
      assert.deepEqual(assertLogInvariants(events), []);
      assert.deepEqual(assertLogInvariants(childEvents), []);
      const wokeOn = String(ofType(childEvents, 'harness.woke').at(-1)?.data.daemon);
      assert.ok(wokeOn !== childOn && wokeOn !== ids[0], `the sub-agent was taken over by the third daemon (${wokeOn})`);
      assert.equal(ofType(childEvents, 'tool.result').length, 1, 'the sub-agent’s tool ran once');
      const results = ofType(events, 'tool.result');
      assert.equal(results.length, 1, 'one result for the agent call');
      assert.match(resultText(results[0]!), /the child is done elsewhere/);
      assert.equal(ofType(events, 'turn.completed').length, 1);
      const child = await ca.request(SessionGet, { sessionId: childId });
      assert.equal(readFileSync(join(child.workspace, 'ran.txt'), 'utf8'), 'once\n');
    } finally {
      await cluster.dispose();
    }
  });

  it('interrupting the parent interrupts its sub-agent running on another daemon; the agent call gets one interrupted result', async () => {
    const { cluster, clients, ids } = await splitCluster(2);
    try {
      const ca = clients[0]!;
      const { parent, childId } = await childHanging(ca, cluster.emulator, { parent: 'wait on a remote child', child: 'hang elsewhere' });
      assert.equal((await ca.request(SessionGet, { sessionId: childId })).runningOn, ids[1], 'the sub-agent runs on the other daemon');
      await interruptTree(ca, parent, childId);
    } finally {
      await cluster.dispose();
    }
  });
});
