/**
 * `agentd acp` against ACP v1 as it stands, driven by the ACP SDK's client side and by
 * the older `@zed-industries/agent-client-protocol` client: session/list, resume and
 * close; a load while a reply streams; a replay after a cancelled reply; MCP servers
 * over http served or refused, never dropped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import * as zed from '@zed-industries/agent-client-protocol';
import { CUT_REPLY_NOTE } from '../clients/acp/session-view.js';
import { AgentdError, ErrorCode, SessionGet, SessionInterrupt, SessionPrompt, VaultSet } from '../protocol/index.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { allEvents, createSession, ofType, settle, waitForEvent, workspace } from './support/agent.js';
import { initialize, startAcp, startAcpRig, withAcp, type AcpProcess } from './support/acp-client.js';
import { suiteFixture } from './support/fixture.js';
import { AGENTD_BIN } from './support/daemon.js';
import { startMcpUpstream } from './support/upstreams.js';
import { until } from './support/until.js';

const agentText = (proc: AcpProcess, sessionId: string) =>
  proc.updates
    .filter((n) => n.sessionId === sessionId)
    .map((n) => (n.update.sessionUpdate === 'agent_message_chunk' && n.update.content.type === 'text' ? n.update.content.text : ''))
    .join('');

describe('agentd acp: ACP v1 sessions', () => {
  const rig = suiteFixture(startAcpRig);

  it('advertises list, resume, close, delete and http MCP servers; lists sessions by cwd', async () => {
    await withAcp(rig(), async (proc, init) => {
      assert.deepEqual(init.agentCapabilities?.sessionCapabilities, { list: {}, resume: {}, close: {}, delete: {} });
      assert.deepEqual(init.agentCapabilities?.mcpCapabilities, { http: true, sse: false });
      const cwd = workspace();
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
      const other = await createSession(rig().client, { title: 'elsewhere' });
      const listed = await proc.agent.request(acp.methods.agent.session.list, { cwd });
      assert.deepEqual(listed.sessions.map((s) => [s.sessionId, s.cwd]), [[sessionId, cwd]]);
      assert.ok(!Number.isNaN(Date.parse(listed.sessions[0]!.updatedAt ?? '')));
      const all = await proc.agent.request(acp.methods.agent.session.list, {});
      assert.ok(all.sessions.some((s) => s.sessionId === other && s.title === 'elsewhere'), JSON.stringify(all));
    });
  });

  it('resumes a session without replaying it, prompts it, and closes it (cancelling its prompt)', async () => {
    const sessionId = await createSession(rig().client);
    rig().emulator.script([reply.text('before the resume')]);
    await rig().client.request(SessionPrompt, { sessionId, content: 'first' });
    await settle(rig().client, sessionId);

    await withAcp(rig(), async (proc) => {
      await proc.agent.request(acp.methods.agent.session.resume, { sessionId, cwd: workspace(), mcpServers: [{ name: 'late', command: 'true', args: [], env: [] }] });
      assert.deepEqual(proc.updates, [], 'nothing replayed');
      // A session's MCP servers are fixed at creation: the editor's are said to be left out.
      await until(() => /keeps the MCP servers it was created with; late \(given with session\/resume\) are not added/.test(proc.stderr()), 'the note on stderr');
      rig().emulator.script([reply.text('after the resume', { chunks: 2 })]);
      const answered = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'second' }] });
      assert.equal(answered.stopReason, 'end_turn');
      assert.equal(agentText(proc, sessionId), 'after the resume');

      rig().emulator.script([reply.hang()]);
      const before = rig().emulator.requests.length;
      const pending = proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'hang' }] });
      await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
      await proc.agent.request(acp.methods.agent.session.close, { sessionId });
      assert.equal((await pending).stopReason, 'cancelled');
      const events = await settle(rig().client, sessionId);
      assert.equal(ofType(events, 'turn.interrupted').length, 1);
      await assert.rejects(
        proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'closed' }] }),
        (error: acp.RequestError) => error.code === -32002,
      );
      await assert.rejects(proc.agent.request(acp.methods.agent.session.resume, { sessionId: 's_doesnotexist0000', cwd: workspace() }), (error: acp.RequestError) => error.code === -32002);
    });
  });

  it('deletes a session for good (session/delete), not while a turn runs', async () => {
    const { client } = rig();
    const sessionId = await createSession(client);
    await withAcp(rig(), async (proc) => {
      await proc.agent.request(acp.methods.agent.session.resume, { sessionId, cwd: workspace() });
      rig().emulator.script([reply.hang()]);
      await client.request(SessionPrompt, { sessionId, content: 'busy' });
      await waitForEvent(client, sessionId, (e) => e.type === 'model.requested');
      await assert.rejects(proc.agent.request(acp.methods.agent.session.delete, { sessionId }), (error: acp.RequestError) => (error.data as { agentdCode?: number }).agentdCode === ErrorCode.SessionBusy);
      await client.request(SessionInterrupt, { sessionId });
      await settle(client, sessionId);
      assert.deepEqual(await proc.agent.request(acp.methods.agent.session.delete, { sessionId }), {});
      await assert.rejects(client.request(SessionGet, { sessionId }), (e: unknown) => e instanceof AgentdError && e.code === ErrorCode.SessionNotFound);
      await assert.rejects(
        proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'deleted' }] }),
        (error: acp.RequestError) => error.code === -32002,
      );
    });
  });

  it('cancelling a prompt queued behind another client\'s turn answers cancelled, leaves that turn alone, and stops its own when it starts', async () => {
    const sessionId = await createSession(rig().client);
    rig().emulator.script([reply.hang(), reply.hang()]);
    const before = rig().emulator.requests.length;
    await rig().client.request(SessionPrompt, { sessionId, content: 'another client runs first' });
    await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
    await withAcp(rig(), async (proc) => {
      await proc.agent.request(acp.methods.agent.session.load, { sessionId, cwd: workspace(), mcpServers: [] });
      const queued = proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'queued' }] });
      await waitForEvent(rig().client, sessionId, (e) => e.type === 'user.message' && JSON.stringify(e.data).includes('queued'));
      await proc.agent.notify(acp.methods.agent.session.cancel, { sessionId });
      assert.equal((await queued).stopReason, 'cancelled');
      assert.deepEqual(ofType(await allEvents(rig().client, sessionId), 'turn.interrupted'), [], 'the other client\'s turn runs on');
      // That turn ends; the cancelled one starts and is stopped at once.
      await rig().client.request(SessionInterrupt, { sessionId });
      const events = await settle(rig().client, sessionId);
      const turns = ofType(events, 'user.message').map((e) => e.data.turnId);
      assert.deepEqual(ofType(events, 'turn.interrupted').map((e) => e.data.turnId), turns);
    });
  });

  it('a load while the reply streams gets that reply whole, once', async () => {
    const live = startAcp(rig());
    const late = startAcp(rig());
    try {
      await initialize(live);
      await initialize(late);
      const cwd = workspace();
      const { sessionId } = await live.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
      const whole = 'one two three four five six';
      // Slow chunks, so the second editor loads while the reply streams.
      rig().emulator.script([reply.text(whole, { chunks: ['one two ', 'three ', 'four ', 'five six'], chunkDelayMs: 1500 })]);
      const prompt = live.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'count' }] });
      await until(() => agentText(live, sessionId).length > 0, 'the first chunk at the live editor');
      await late.agent.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
      assert.equal((await prompt).stopReason, 'end_turn');
      await until(() => agentText(late, sessionId).includes('six'), 'the reply at the late editor');
      assert.equal(agentText(live, sessionId), whole);
      assert.equal(agentText(late, sessionId), whole);
    } finally {
      assert.equal(await live.close(), 0, live.stderr());
      assert.equal(await late.close(), 0, late.stderr());
    }
  });

  it('a replay after a cancelled reply says it was cut, as the live editor was told', async () => {
    const live = startAcp(rig());
    try {
      await initialize(live);
      const cwd = workspace();
      const { sessionId } = await live.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
      rig().emulator.script([reply.hang({ afterEvents: 4 })]);
      const prompt = live.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'start' }] });
      await until(() => agentText(live, sessionId).length > 0, 'part of the reply');
      await live.agent.notify(acp.methods.agent.session.cancel, { sessionId });
      assert.equal((await prompt).stopReason, 'cancelled');
      await until(() => agentText(live, sessionId).endsWith(CUT_REPLY_NOTE), 'the cut note at the live editor');
      const partial = agentText(live, sessionId).slice(0, -CUT_REPLY_NOTE.length);
      assert.ok(partial.length > 0 && 'This reply is cut off before it can fin'.startsWith(partial), partial);

      const replay = startAcp(rig());
      try {
        await initialize(replay);
        await replay.agent.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
        assert.equal(agentText(replay, sessionId), CUT_REPLY_NOTE);
      } finally {
        assert.equal(await replay.close(), 0, replay.stderr());
      }
    } finally {
      assert.equal(await live.close(), 0, live.stderr());
    }
  });

  it('serves an http MCP server (with a vault credential by name) and refuses secret headers and SSE', async () => {
    const token = `acp-mcp-${Math.random().toString(36).slice(2)}`;
    const upstream = await startMcpUpstream(token);
    const proc = startAcp(rig());
    try {
      await rig().client.request(VaultSet, { name: 'ACP_NOTES', value: token, binding: { kind: 'mcp', url: upstream.url } });
      await initialize(proc);
      const cwd = workspace();
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, {
        cwd,
        mcpServers: [{ type: 'http', name: 'notes', url: upstream.url, headers: [{ name: 'agentd-credential', value: 'ACP_NOTES' }] }],
      });
      proc.answer = () => ({ outcome: { outcome: 'selected', optionId: 'allow' } });
      rig().emulator.script([reply.toolUse({ name: 'mcp__notes__lookup', input: { word: 'acp' } }), reply.text('looked up')]);
      const done = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'look up' }] });
      assert.equal(done.stopReason, 'end_turn');
      assert.deepEqual(upstream.calls, ['acp']);
      const created = ofType(await settle(rig().client, sessionId), 'session.created')[0]!;
      assert.ok(!JSON.stringify(created).includes(token), 'the token is not in the log');

      for (const server of [
        { type: 'http' as const, name: 'secret', url: upstream.url, headers: [{ name: 'Authorization', value: `Bearer ${token}` }] },
        { type: 'sse' as const, name: 'old', url: upstream.url, headers: [] },
      ]) {
        await assert.rejects(
          proc.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [server] }),
          (error: acp.RequestError) => error.code === -32602 && !error.message.includes(token),
        );
      }
      assert.equal((await rig().client.request(SessionGet, { sessionId })).status, 'idle');
    } finally {
      assert.equal(await proc.close(), 0, proc.stderr());
      await upstream.close();
    }
  });

  it('works with the older @zed-industries/agent-client-protocol client: initialize, new, prompt, load', async () => {
    const child = spawn(process.execPath, [AGENTD_BIN, 'acp', '--home', rig().daemon.layout.home], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const updates: zed.SessionNotification[] = [];
    const editor: zed.Client = {
      requestPermission: async (params) => ({ outcome: { outcome: 'selected', optionId: params.options[0]!.optionId } }),
      sessionUpdate: async (params) => void updates.push(params),
    };
    const agent = new zed.ClientSideConnection(
      () => editor,
      zed.ndJsonStream(Writable.toWeb(child.stdin) as WritableStream<Uint8Array>, Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>),
    );
    try {
      const init = await agent.initialize({ protocolVersion: zed.PROTOCOL_VERSION, clientCapabilities: { fs: { readTextFile: false, writeTextFile: false } } });
      assert.equal(init.protocolVersion, 1);
      const cwd = workspace();
      const { sessionId } = await agent.newSession({ cwd, mcpServers: [] });
      rig().emulator.script([reply.text('hello old client', { chunks: 3 })]);
      assert.equal((await agent.prompt({ sessionId, prompt: [{ type: 'text', text: 'hi' }] })).stopReason, 'end_turn');
      const text = () =>
        updates.map((n) => (n.update.sessionUpdate === 'agent_message_chunk' && n.update.content.type === 'text' ? n.update.content.text : '')).join('');
      assert.equal(text(), 'hello old client');
      updates.length = 0;
      await agent.loadSession({ sessionId, cwd, mcpServers: [] });
      assert.equal(text(), 'hello old client');
    } finally {
      child.stdin.end();
      assert.equal(await exited, 0);
    }
  });
});
