/** `agentd mcp` end to end: the SDK's MCP client over real stdio, a real daemon, the emulator as the model. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ResourceUpdatedNotificationSchema, type CallToolResult, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { SessionGet } from '../protocol/index.js';
import { AGENTD_BIN, runAgentd, tempHome } from './support/daemon.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { startMcp, startMcpRig } from './support/mcp-client.js';
import { suiteFixture } from './support/fixture.js';
import { ofType, settle, workspace } from './support/agent.js';
import { until } from './support/until.js';

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function newSession(client: Client, title: string): Promise<string> {
  const result = await call(client, 'agentd_create_session', { workspace: workspace(), title, permissions: { default: 'allow' } });
  assert.equal(result.isError, undefined, text(result));
  return (result.structuredContent as { sessionId: string }).sessionId;
}

describe('agentd mcp', () => {
  const mcpRig = suiteFixture(startMcpRig);
  const rig = () => mcpRig().rig;
  const mcp = () => mcpRig().mcp;

  it('lists its tools with input schemas', async () => {
    const { tools } = await mcp().client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual(
      [...byName.keys()].sort(),
      ['agentd_answer_permission', 'agentd_create_session', 'agentd_interrupt', 'agentd_list_sessions', 'agentd_prompt', 'agentd_read_events', 'agentd_steer'],
    );
    assert.deepEqual(byName.get('agentd_prompt')!.inputSchema.required, ['sessionId', 'prompt']);
    assert.deepEqual(byName.get('agentd_read_events')!.inputSchema.required, ['sessionId']);
    for (const tool of tools) assert.ok(tool.description && tool.description.length > 20, `${tool.name} has a description`);
  });

  it('creates a session and prompts it: answer, tool summary, stop reason, progress notifications', async () => {
    const sessionId = await newSession(mcp().client, 'mcp prompt');
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo from-the-sandbox' } }), reply.text('The command printed from-the-sandbox.')]);
    const progress: Array<{ progress: number; message?: string }> = [];
    const result = (await mcp().client.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'run echo' } }, undefined, {
      onprogress: (p) => progress.push(p),
    })) as CallToolResult;
    assert.equal(result.isError, undefined, text(result));
    const summary = result.structuredContent as { answer: string; outcome: string; stopReason: string; toolCalls: Array<{ name: string; ok: boolean }> };
    assert.equal(summary.answer, 'The command printed from-the-sandbox.');
    assert.equal(summary.outcome, 'completed');
    assert.equal(summary.stopReason, 'end_turn');
    assert.deepEqual(summary.toolCalls.map((c) => [c.name, c.ok]), [['bash', true]]);
    assert.match(text(result), /^The command printed from-the-sandbox\.\n/);
    assert.match(text(result), /Tool calls: bash \(ok\)/);
    assert.match(text(result), /Turn completed \(stop reason: end_turn\)/);
    // One notification per event of the turn, in order, ending with its end.
    assert.ok(progress.length >= 6, JSON.stringify(progress));
    assert.deepEqual(progress.map((p) => p.progress), progress.map((_, i) => i + 1));
    assert.ok(progress.some((p) => p.message === 'tool.started: bash'), JSON.stringify(progress));
    assert.equal(progress.at(-1)!.message, 'turn.completed');
  });

  it('reports a failing tool call and a failed turn', async () => {
    const sessionId = await newSession(mcp().client, 'mcp failures');
    rig().emulator.script([reply.toolUse({ name: 'read_file', input: { path: 'missing.txt' } }), reply.text('No such file.')]);
    const result = await call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'read missing.txt' });
    assert.match(text(result), /Tool calls: read_file \(error: tool_error\)/);
    rig().emulator.script([reply.error(400, { message: 'emulated bad request' })]);
    const failed = await call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'fail please' });
    assert.equal(failed.isError, true);
    assert.equal((failed.structuredContent as { outcome: string }).outcome, 'failed');
    assert.match(text(failed), /Turn failed: .*emulated bad request/);
  });

  it('reads events by position, with paging and a type filter', async () => {
    const sessionId = await newSession(mcp().client, 'mcp events');
    rig().emulator.script([reply.text('hello back')]);
    await call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'hello' });
    const first = (await call(mcp().client, 'agentd_read_events', { sessionId, from: 0, limit: 2 })).structuredContent as {
      events: Array<{ seq: number; type: string }>;
      next: number;
      headSeq: number;
    };
    assert.deepEqual(first.events.map((e) => [e.seq, e.type]), [[0, 'session.created'], [1, 'user.message']]);
    assert.equal(first.next, 2);
    const rest = (await call(mcp().client, 'agentd_read_events', { sessionId, from: first.next })).structuredContent as {
      events: Array<{ seq: number; type: string }>;
      next?: number;
    };
    assert.equal(rest.next, undefined);
    assert.deepEqual(rest.events.map((e) => e.seq), Array.from({ length: first.headSeq - 2 }, (_, i) => i + 2));
    assert.equal(rest.events.at(-1)!.type, 'turn.completed');
    const replies = (await call(mcp().client, 'agentd_read_events', { sessionId, types: ['assistant.message'] })).structuredContent as {
      events: Array<{ type: string; data: { content: Array<{ text?: string }> } }>;
    };
    assert.deepEqual(replies.events.map((e) => e.data.content[0]!.text), ['hello back']);
  });

  it('lists sessions, by status too', async () => {
    const sessionId = await newSession(mcp().client, 'mcp listed');
    const all = (await call(mcp().client, 'agentd_list_sessions', {})).structuredContent as { sessions: Array<{ sessionId: string; title?: string; status: string }> };
    const mine = all.sessions.find((s) => s.sessionId === sessionId);
    assert.deepEqual([mine?.title, mine?.status], ['mcp listed', 'idle']);
    const running = (await call(mcp().client, 'agentd_list_sessions', { status: 'running' })).structuredContent as { sessions: unknown[] };
    assert.deepEqual(running.sessions, []);
  });

  it('interrupts a hanging turn; the waiting prompt returns "interrupted"', async () => {
    const sessionId = await newSession(mcp().client, 'mcp interrupt');
    rig().emulator.script([reply.hang()]);
    const before = rig().emulator.requests.length;
    const pending = call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'hang' });
    await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
    const interrupted = await call(mcp().client, 'agentd_interrupt', { sessionId });
    assert.deepEqual(interrupted.structuredContent, { sessionId, interrupted: true });
    const result = await pending;
    assert.equal(result.isError, undefined, text(result));
    assert.equal((result.structuredContent as { outcome: string }).outcome, 'interrupted');
    assert.match(text(result), /Turn interrupted\./);
    const again = await call(mcp().client, 'agentd_interrupt', { sessionId });
    assert.equal((again.structuredContent as { interrupted: boolean }).interrupted, false);
  });

  it('steers a running turn: the waiting prompt returns the answer of the model call that read the steer', async () => {
    const sessionId = await newSession(mcp().client, 'mcp steer');
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    rig().emulator.script([async () => (await released, reply.text('a first draft')), reply.text('a draft about the sea')]);
    const before = rig().emulator.requests.length;
    const pending = call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'write a poem' });
    await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
    const steered = await call(mcp().client, 'agentd_steer', { sessionId, text: 'about the sea' });
    assert.equal((steered.structuredContent as { steered: boolean }).steered, true, text(steered));
    release();
    const result = await pending;
    assert.equal((result.structuredContent as { answer: string }).answer, 'a draft about the sea');
    assert.equal(rig().emulator.requests.length - before, 2);
  });

  it('stops waiting when the host cancels agentd_prompt; the turn runs on until interrupted', async () => {
    const sessionId = await newSession(mcp().client, 'mcp cancel');
    rig().emulator.script([reply.hang()]);
    const before = rig().emulator.requests.length;
    const abort = new AbortController();
    const pending = mcp().client.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'hang' } }, undefined, { signal: abort.signal });
    await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
    abort.abort();
    await assert.rejects(pending);
    // Running: the status is written with model.requested, which the request does not wait for.
    const status = async () =>
      ((await call(mcp().client, 'agentd_list_sessions', {})).structuredContent as { sessions: Array<{ sessionId: string; status: string }> }).sessions.find((s) => s.sessionId === sessionId)?.status;
    await until(async () => (await status()) === 'running', 'the cancelled prompt\'s turn to run on');
    const interrupted = await call(mcp().client, 'agentd_interrupt', { sessionId });
    assert.equal((interrupted.structuredContent as { interrupted: boolean }).interrupted, true);
  });

  it('answers unknown sessions and bad arguments with isError results, not protocol errors', async () => {
    for (const [name, args] of [
      ['agentd_prompt', { sessionId: 's_0000000000unknown', prompt: 'hi' }],
      ['agentd_read_events', { sessionId: 's_0000000000unknown' }],
      ['agentd_interrupt', { sessionId: 's_0000000000unknown' }],
    ] as const) {
      const result = await call(mcp().client, name, args);
      assert.equal(result.isError, true, `${name}: ${text(result)}`);
      assert.match(text(result), /s_0000000000unknown/, `${name}: ${text(result)}`);
    }
    const malformed = await call(mcp().client, 'agentd_read_events', { sessionId: 'not-a-session' });
    assert.equal(malformed.isError, true);
    assert.match(text(malformed), /session id/);
    const badPolicy = await call(mcp().client, 'agentd_create_session', { permissions: { default: 'sometimes' } });
    assert.equal(badPolicy.isError, true);
  });

  it('serves event logs as resources; a subscription hears of new events; unsubscribe stops it', async () => {
    const sessionId = await newSession(mcp().client, 'mcp resource');
    const uri = `agentd://sessions/${sessionId}/events`;
    const { resourceTemplates } = await mcp().client.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), ['agentd://sessions/{sessionId}/events']);
    const { resources } = await mcp().client.listResources();
    assert.ok(resources.some((r) => r.uri === uri && r.name.includes('mcp resource')), JSON.stringify(resources));
    const read = await mcp().client.readResource({ uri });
    const body = JSON.parse(String((read.contents[0] as { text: string }).text)) as { headSeq: number; events: Array<{ type: string }> };
    assert.deepEqual(body.events.map((e) => e.type), ['session.created']);
    assert.equal(body.headSeq, 1);

    const updates: string[] = [];
    mcp().client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await mcp().client.subscribeResource({ uri });
    rig().emulator.script([reply.text('subscribed answer')]);
    await call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'notify me' });
    await until(() => updates.includes(uri), 'notifications/resources/updated');
    const after = JSON.parse(String(((await mcp().client.readResource({ uri })).contents[0] as { text: string }).text)) as { events: Array<{ type: string }> };
    assert.equal(after.events.at(-1)!.type, 'turn.completed');

    await mcp().client.unsubscribeResource({ uri });
    updates.length = 0;
    rig().emulator.script([reply.text('unheard')]);
    await call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'quietly' });
    // A marker after the turn: the updates of the turn, had there been any, came before its answer.
    await call(mcp().client, 'agentd_list_sessions', {});
    assert.deepEqual(updates, []);

    await assert.rejects(mcp().client.subscribeResource({ uri: 'agentd://sessions/s_0000000000unknown/events' }), /s_0000000000unknown/);
    await assert.rejects(mcp().client.readResource({ uri: 'agentd://sessions/s_0000000000unknown/events' }), /s_0000000000unknown/);
  });

  it('reconnects on the next call after the daemon restarts, and resubscribes its resources', async () => {
    const sessionId = await newSession(mcp().client, 'mcp restart');
    const uri = `agentd://sessions/${sessionId}/events`;
    const updates: string[] = [];
    mcp().client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await mcp().client.subscribeResource({ uri });
    await rig().crashAndRestart();
    const listed = await call(mcp().client, 'agentd_list_sessions', {});
    assert.equal(listed.isError, undefined, text(listed));
    assert.ok((listed.structuredContent as { sessions: Array<{ sessionId: string }> }).sessions.some((s) => s.sessionId === sessionId));
    rig().emulator.script([reply.text('after the restart')]);
    const result = await call(mcp().client, 'agentd_prompt', { sessionId, prompt: 'still there?' });
    assert.equal((result.structuredContent as { answer: string }).answer, 'after the restart');
    await until(() => updates.includes(uri), 'an update: the subscription survived the restart');
    await mcp().client.unsubscribeResource({ uri });
    const client = await rig().daemon.client();
    const events = await settle(client, sessionId);
    assert.equal(ofType(events, 'turn.completed').length, 1);
    assert.equal((await client.request(SessionGet, { sessionId })).status, 'idle');
  });

  it('puts permission questions of its sessions to the host user by elicitation', async () => {
    const asked: string[] = [];
    const answers: ElicitResult[] = [{ action: 'accept', content: { decision: 'allow' } }, { action: 'decline' }];
    const host = await startMcp(rig().daemon.layout.home, (message) => {
      asked.push(message);
      return answers.shift()!;
    });
    try {
      const created = await call(host.client, 'agentd_create_session', { workspace: workspace(), title: 'mcp asks', permissions: { default: 'ask' } });
      const sessionId = (created.structuredContent as { sessionId: string }).sessionId;
      rig().emulator.script([
        reply.toolUse({ name: 'bash', input: { command: 'echo allowed' } }),
        reply.toolUse({ name: 'bash', input: { command: 'echo declined' } }),
        reply.text('one ran, one was denied'),
      ]);
      const result = await call(host.client, 'agentd_prompt', { sessionId, prompt: 'two commands' });
      const summary = result.structuredContent as { answer: string; toolCalls: Array<{ name: string; ok: boolean; errorKind?: string }> };
      assert.equal(summary.answer, 'one ran, one was denied');
      assert.deepEqual(summary.toolCalls.map((c) => [c.name, c.ok, c.errorKind]), [['bash', true, undefined], ['bash', false, 'denied']]);
      assert.deepEqual(asked, [
        `agentd session "mcp asks" (${sessionId}) wants to run bash: echo allowed`,
        `agentd session "mcp asks" (${sessionId}) wants to run bash: echo declined`,
      ]);
      const resolved = (await call(host.client, 'agentd_read_events', { sessionId, types: ['permission.resolved'] })).structuredContent as {
        events: Array<{ data: { decision: string; by: string } }>;
      };
      assert.deepEqual(resolved.events.map((e) => e.data.decision), ['allow', 'deny']);
      assert.ok(resolved.events.every((e) => e.data.by.startsWith('agentd-mcp')), JSON.stringify(resolved.events));
      assert.deepEqual(host.errors, []);
    } finally {
      await host.close();
    }
  });

  it('starts the daemon when none runs', async () => {
    const layout = tempHome();
    const host = await startMcp(layout.home);
    try {
      const listed = await call(host.client, 'agentd_list_sessions', {});
      assert.equal(listed.isError, undefined, text(listed));
      assert.deepEqual(listed.structuredContent, { sessions: [] });
      const status = await runAgentd(layout, ['status', '--json']);
      assert.equal(status.code, 0, status.stderr);
    } finally {
      await host.close();
      await runAgentd(layout, ['stop']);
      rmSync(layout.home, { recursive: true, force: true });
    }
  });

  it('writes nothing but JSON-RPC messages to stdout', async () => {
    assert.deepEqual(mcp().errors, []);
    // The SDK client tolerates nothing else either, but read the raw bytes to be sure.
    const child = spawn(process.execPath, [AGENTD_BIN, 'mcp'], {
      env: { ...process.env, AGENTD_HOME: rig().daemon.layout.home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const answered = new Set<unknown>();
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      lines.push(line);
      try {
        answered.add((JSON.parse(line) as { id?: unknown }).id);
      } catch {
        // kept in `lines`; the assertion below reports it
      }
    });
    const send = (message: Record<string, unknown>) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
    send({ id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
    send({ method: 'notifications/initialized' });
    send({ id: 2, method: 'tools/list' });
    send({ id: 3, method: 'tools/call', params: { name: 'agentd_list_sessions', arguments: {} } });
    send({ id: 4, method: 'tools/call', params: { name: 'agentd_read_events', arguments: { sessionId: 's_0000000000unknown' } } });
    send({ id: 5, method: 'resources/list' });
    await until(() => [1, 2, 3, 4, 5].every((id) => answered.has(id)), 'answers to requests 1 to 5');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin.end();
    assert.equal(await exited, 0, 'exits 0 when its host closes stdin');
    assert.ok(lines.length >= 5);
    for (const line of lines) {
      const message = JSON.parse(line) as { jsonrpc?: string };
      assert.equal(message.jsonrpc, '2.0', line);
    }
  });
});
