/**
 * `agentd acp` end to end: the real command over stdio, driven by the ACP SDK's
 * client-side connection, against a real daemon wired to the Messages-API emulator.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import { SessionPrompt, type Event } from '../protocol/index.js';
import { allEvents, API_KEY, createSession, ofType, settle, waitForEvent, workspace } from './support/agent.js';
import { runAgentd, tempHome } from './support/daemon.js';
import { initialize, startAcp, startAcpRig, withAcp, type AcpProcess } from './support/acp-client.js';
import { suiteFixture } from './support/fixture.js';
import { reply } from '../clients/cli/demo/model-emulator.js';

/** Every stdout line is one JSON-RPC 2.0 message: nothing else reached stdout. */
function assertOnlyFrames(proc: AcpProcess): void {
  const lines = proc.stdout().split('\n').filter((l) => l.length > 0);
  assert.ok(lines.length > 0, 'the agent wrote frames');
  for (const line of lines) {
    let message: { jsonrpc?: unknown };
    try {
      message = JSON.parse(line) as { jsonrpc?: unknown };
    } catch {
      assert.fail(`stdout has a line that is not JSON: ${line.slice(0, 200)}`);
    }
    assert.equal(message.jsonrpc, '2.0', `not a JSON-RPC frame: ${line.slice(0, 200)}`);
  }
}

const updatesOf = (proc: AcpProcess, sessionId: string) => proc.updates.filter((n) => n.sessionId === sessionId).map((n) => n.update);

function textOf(updates: acp.SessionUpdate[], kind: 'agent_message_chunk' | 'user_message_chunk'): string {
  return updates.map((u) => (u.sessionUpdate === kind && u.content.type === 'text' ? u.content.text : '')).join('');
}

describe('agentd acp', () => {
  const rig = suiteFixture(startAcpRig);

  it('streams a prompt with a tool call: chunks once, tool_call, tool_call_update, end_turn', async () => {
    await withAcp(rig(), async (proc, init) => {
      assert.equal(init.protocolVersion, acp.PROTOCOL_VERSION);
      assert.equal(init.agentCapabilities?.loadSession, true);

      const cwd = workspace();
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
      rig().emulator.script([
        reply.toolUse({ id: 'toolu_acp_echo', name: 'bash', input: { command: 'echo acp-tool-output' } }),
        reply.text('The command printed acp-tool-output.', { chunks: 4 }),
      ]);
      const result = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'run echo' }] });
      assert.equal(result.stopReason, 'end_turn');

      const updates = updatesOf(proc, sessionId);
      // Streamed text arrives once: the durable assistant.message does not repeat it.
      assert.equal(textOf(updates, 'agent_message_chunk'), 'The command printed acp-tool-output.');
      assert.ok(updates.filter((u) => u.sessionUpdate === 'agent_message_chunk').length > 1, 'text streamed in several chunks');
      // The editor shows its own prompt; it is not echoed back.
      assert.equal(textOf(updates, 'user_message_chunk'), '');

      const call = updates.find((u) => u.sessionUpdate === 'tool_call');
      assert.ok(call && call.sessionUpdate === 'tool_call');
      assert.equal(call.toolCallId, 'toolu_acp_echo');
      assert.equal(call.kind, 'execute');
      assert.deepEqual(call.rawInput, { command: 'echo acp-tool-output' });
      const toolUpdates = updates.filter((u) => u.sessionUpdate === 'tool_call_update' && u.toolCallId === 'toolu_acp_echo');
      assert.deepEqual(toolUpdates.map((u) => u.sessionUpdate === 'tool_call_update' && u.status), ['in_progress', 'completed']);
      const done = toolUpdates.at(-1);
      assert.ok(done && done.sessionUpdate === 'tool_call_update');
      assert.match(JSON.stringify(done.content), /acp-tool-output/);
      // In order: the call, its updates, then the final text.
      const order = updates.map((u) => u.sessionUpdate).filter((k, i, a) => k !== a[i - 1]);
      assert.deepEqual(order, ['tool_call', 'tool_call_update', 'agent_message_chunk']);

      // The session defaults to asking: the editor was asked, after seeing the call.
      assert.equal(proc.permissionRequests.length, 1);
      const asked = proc.permissionRequests[0]!;
      assert.equal(asked.toolCall.toolCallId, 'toolu_acp_echo');
      assert.deepEqual(asked.options.map((o) => o.kind).sort(), ['allow_always', 'allow_once', 'reject_once']);
      assert.ok(proc.announcedAtPermission[0]!.includes('toolu_acp_echo'));

      const events = await settle(rig().client, sessionId);
      assert.equal(ofType(events, 'session.created')[0]!.data.workspace, cwd);
      assert.equal(ofType(events, 'permission.resolved')[0]!.data.decision, 'allow');
      assertOnlyFrames(proc);
    });
  });

  it('maps allow-always through session/request_permission to agentd allow_always', async () => {
    await withAcp(rig(), async (proc) => {
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      proc.answer = (request) => ({
        outcome: { outcome: 'selected', optionId: request.options.find((o) => o.kind === 'allow_always')!.optionId },
      });
      rig().emulator.script([
        reply.toolUse({ id: 'toolu_acp_always1', name: 'bash', input: { command: 'echo one' } }),
        reply.toolUse({ id: 'toolu_acp_always2', name: 'bash', input: { command: 'echo two' } }),
        reply.text('both ran'),
      ]);
      const result = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'run twice' }] });
      assert.equal(result.stopReason, 'end_turn');
      // Asked once: "always" covers the second call.
      assert.deepEqual(proc.permissionRequests.map((r) => r.toolCall.toolCallId), ['toolu_acp_always1']);

      const events = await settle(rig().client, sessionId);
      const resolved = ofType(events, 'permission.resolved');
      assert.equal(resolved.length, 1);
      assert.equal(resolved[0]!.data.decision, 'allow_always');
      assert.match(String(resolved[0]!.data.by), /agentd-acp/);
      const statuses = updatesOf(proc, sessionId).flatMap((u) => (u.sessionUpdate === 'tool_call_update' && u.status !== 'in_progress' ? [`${u.toolCallId}:${u.status}`] : []));
      assert.deepEqual(statuses, ['toolu_acp_always1:completed', 'toolu_acp_always2:completed']);
      assertOnlyFrames(proc);
    });
  });

  it('a rejected permission fails the tool call and the turn goes on', async () => {
    await withAcp(rig(), async (proc) => {
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      proc.answer = (request) => ({ outcome: { outcome: 'selected', optionId: request.options.find((o) => o.kind === 'reject_once')!.optionId } });
      rig().emulator.script([reply.toolUse({ id: 'toolu_acp_reject', name: 'bash', input: { command: 'echo no' } }), reply.text('not allowed, fine')]);
      const result = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'try it' }] });
      assert.equal(result.stopReason, 'end_turn');
      const failed = updatesOf(proc, sessionId).find((u) => u.sessionUpdate === 'tool_call_update' && u.toolCallId === 'toolu_acp_reject' && u.status === 'failed');
      assert.ok(failed, 'the denied call is shown as failed');
      const events = await settle(rig().client, sessionId);
      assert.equal(ofType(events, 'permission.resolved')[0]!.data.decision, 'deny');
      assert.equal(ofType(events, 'tool.result')[0]!.data.errorKind, 'denied');
      assert.equal(ofType(events, 'tool.started').length, 0);
    });
  });

  it('session/cancel interrupts a hanging reply: stopReason cancelled', async () => {
    await withAcp(rig(), async (proc) => {
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      rig().emulator.script([reply.hang()]);
      const before = rig().emulator.requests.length;
      const prompt = proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'wait forever' }] });
      await rig().emulator.waitForRequests(before + 1);
      await proc.agent.notify(acp.methods.agent.session.cancel, { sessionId });
      assert.equal((await prompt).stopReason, 'cancelled');
      const events = await settle(rig().client, sessionId);
      assert.equal(ofType(events, 'turn.interrupted').length, 1);
      assertOnlyFrames(proc);
    });
  });

  it('steers a running prompt with _session/steering: the turn goes on with it and ends once', async () => {
    await withAcp(rig(), async (proc, init) => {
      assert.deepEqual(init._meta?.steering, { supported: true });
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      rig().emulator.script([async () => (await released, reply.text('A first draft. ')), reply.text('A draft about the sea.')]);
      const before = rig().emulator.requests.length;
      const prompt = proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'write a poem' }] });
      await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
      const steered = await proc.agent.request<{ outcome: string }>('_session/steering', { sessionId, prompt: [{ type: 'text', text: 'about the sea' }] });
      assert.equal(steered.outcome, 'injected');
      release();
      assert.equal((await prompt).stopReason, 'end_turn');
      assert.equal(rig().emulator.requests.length - before, 2);
      assert.equal(textOf(updatesOf(proc, sessionId), 'agent_message_chunk'), 'A first draft. A draft about the sea.');
      assert.equal(textOf(updatesOf(proc, sessionId), 'user_message_chunk'), '', 'what the editor sent is not echoed back');
      const bad = proc.agent.request('_session/steering', { sessionId, prompt: [] });
      await assert.rejects(bad, (e: unknown) => e instanceof acp.RequestError && e.code === -32602);
      assertOnlyFrames(proc);
    });
  });

  it('a cancelled permission request denies the call', async () => {
    await withAcp(rig(), async (proc) => {
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      proc.answer = () => ({ outcome: { outcome: 'cancelled' } });
      rig().emulator.script([reply.toolUse({ id: 'toolu_acp_cancelled', name: 'bash', input: { command: 'echo x' } }), reply.text('ok')]);
      const result = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'go' }] });
      assert.equal(result.stopReason, 'end_turn');
      const events = await settle(rig().client, sessionId);
      assert.equal(ofType(events, 'permission.resolved')[0]!.data.decision, 'deny');
    });
  });

  it('a failed turn answers the prompt with a JSON-RPC error', async () => {
    await withAcp(rig(), async (proc) => {
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      rig().emulator.script([reply.error(400, { message: 'prompt is malformed on purpose' })]);
      await assert.rejects(
        proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'fail please' }] }),
        (error: acp.RequestError) => error.code === -32603 && /turn failed/.test(error.message),
      );
      const events = await settle(rig().client, sessionId);
      assert.equal(ofType(events, 'turn.failed').length, 1);
    });
  });

  it('session/load replays an existing session: user and agent messages, tool calls and results', async () => {
    // A session made and run by another client, with permissions that need no answer.
    const sessionId = await createSession(rig().client);
    rig().emulator.script([
      reply.toolUse({ id: 'toolu_acp_replay', name: 'bash', input: { command: 'echo replayed-output' } }, { text: 'Let me run it.' }),
      reply.text('It printed replayed-output.'),
    ]);
    await rig().client.request(SessionPrompt, { sessionId, content: 'show me the replay' });
    const log = await settle(rig().client, sessionId);
    assert.equal(ofType(log, 'turn.completed').length, 1);

    await withAcp(rig(), async (proc, init) => {
      assert.equal(init.agentCapabilities?.loadSession, true);
      const cwd = String(ofType(log, 'session.created')[0]!.data.workspace);
      await proc.agent.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
      // Everything replayed arrived before the load answered.
      const updates = updatesOf(proc, sessionId);
      assert.equal(textOf(updates, 'user_message_chunk'), 'show me the replay');
      assert.equal(textOf(updates, 'agent_message_chunk'), 'Let me run it.It printed replayed-output.');
      const kinds = updates.map((u) => u.sessionUpdate).filter((k, i, a) => k !== a[i - 1]);
      assert.deepEqual(kinds, ['user_message_chunk', 'agent_message_chunk', 'tool_call', 'tool_call_update', 'agent_message_chunk']);
      const result = updates.find((u) => u.sessionUpdate === 'tool_call_update' && u.status === 'completed');
      assert.ok(result && result.sessionUpdate === 'tool_call_update');
      assert.equal(result.toolCallId, 'toolu_acp_replay');
      assert.match(JSON.stringify(result.content), /replayed-output/);

      // The loaded session takes prompts like a new one.
      rig().emulator.script([reply.text('still here', { chunks: 2 })]);
      const next = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'again' }] });
      assert.equal(next.stopReason, 'end_turn');
      assert.ok(textOf(updatesOf(proc, sessionId), 'agent_message_chunk').endsWith('still here'));
      assert.equal((await allEvents(rig().client, sessionId)).filter((e) => e.type === 'user.message').length, 2);

      await assert.rejects(
        proc.agent.request(acp.methods.agent.session.load, { sessionId: 's_doesnotexist0000', cwd, mcpServers: [] }),
        (error: acp.RequestError) => error.code === -32002,
      );
      assertOnlyFrames(proc);
    });
  });

  it('answers a question left open before the editor loaded the session', async () => {
    // Another client prompts a session that asks, and cannot answer itself.
    const sessionId = await createSession(rig().client, { permissions: { default: 'ask' } });
    rig().emulator.script([reply.toolUse({ id: 'toolu_acp_open', name: 'bash', input: { command: 'echo late' } }), reply.text('answered late')]);
    await rig().client.request(SessionPrompt, { sessionId, content: 'ask someone' });
    await waitForEvent(rig().client, sessionId, (e: Event) => e.type === 'permission.requested');

    await withAcp(rig(), async (proc) => {
      const cwd = workspace();
      await proc.agent.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
      const events = await settle(rig().client, sessionId);
      assert.deepEqual(proc.permissionRequests.map((r) => r.toolCall.toolCallId), ['toolu_acp_open']);
      assert.equal(ofType(events, 'permission.resolved')[0]!.data.decision, 'allow');
      assert.equal(ofType(events, 'turn.completed').length, 1);
      // The rest of the turn streamed to the editor as it happened.
      const updates = updatesOf(proc, sessionId);
      assert.ok(updates.some((u) => u.sessionUpdate === 'tool_call_update' && u.toolCallId === 'toolu_acp_open' && u.status === 'completed'));
      assert.ok(textOf(updates, 'agent_message_chunk').endsWith('answered late'));
      assertOnlyFrames(proc);
    });
  });

  it('follows its sessions again after the daemon restarts', async () => {
    await withAcp(rig(), async (proc) => {
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      rig().emulator.script([reply.text('before the crash')]);
      assert.equal((await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'one' }] })).stopReason, 'end_turn');

      await rig().crashAndRestart();
      rig().client = await rig().daemon.client();
      rig().emulator.script([reply.text('after the crash', { chunks: 3 })]);
      assert.equal((await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'two' }] })).stopReason, 'end_turn');
      const text = textOf(updatesOf(proc, sessionId), 'agent_message_chunk');
      assert.equal(text, 'before the crashafter the crash');
      assert.equal(ofType(await settle(rig().client, sessionId), 'turn.completed').length, 2);
      assertOnlyFrames(proc);
    });
  });

  it('starts the daemon when none runs', async () => {
    const layout = tempHome();
    const proc = startAcp(rig(), {
      home: layout.home,
      env: { ANTHROPIC_BASE_URL: rig().emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' },
    });
    try {
      await initialize(proc);
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      rig().emulator.script([reply.text('from a daemon started on demand')]);
      const result = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'hello' }] });
      assert.equal(result.stopReason, 'end_turn');
      assert.equal(textOf(updatesOf(proc, sessionId), 'agent_message_chunk'), 'from a daemon started on demand');
      assertOnlyFrames(proc);
    } finally {
      assert.equal(await proc.close(), 0, proc.stderr());
      // The daemon outlives the editor's agent process; stop it here (`agentd stop`
      // returns once it has exited: only then is its data dir ours to remove).
      assert.equal((await runAgentd(layout, ['stop'])).code, 0);
      rmSync(layout.home, { recursive: true, force: true });
    }
  });
});
