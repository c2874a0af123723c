/**
 * Every client over the network: the CLI (`--remote`, a token file), `agentd stdio
 * --remote` as an editor spawns it, `agentd acp` and `agentd mcp` with AGENTD_REMOTE,
 * each from a data dir with no daemon of its own, against a daemon listening on wss://
 * with a self-signed certificate. `log --follow` over the network resumes after the
 * daemon restarts with no gap and no duplicate, as it does locally.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { reply, startModelEmulator, type ModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { PROTOCOL_VERSION, SessionPrompt } from '../protocol/index.js';
import { initialize, startAcp } from './support/acp-client.js';
import { API_KEY, createSession, settle, workspace } from './support/agent.js';
import { RawConnection, runAgentd, spawnAgentd, tempHome } from './support/daemon.js';
import { startMcp } from './support/mcp-client.js';
import { createToken, startListeningDaemon, type ListeningDaemon } from './support/remote.js';
import { tempDir } from './support/temp.js';
import { until } from './support/until.js';

describe('clients of a daemon over wss://', () => {
  let emulator: ModelEmulator;
  let daemon: ListeningDaemon;
  let token: string;
  /** A data dir with no daemon: a client that fell back to a local daemon would start one here. */
  const away = tempHome();
  const remoteEnv = () => ({ AGENTD_REMOTE: daemon.url, AGENTD_TOKEN: token, AGENTD_REMOTE_CA: daemon.cert.certFile });
  before(async () => {
    emulator = await startModelEmulator({ apiKey: API_KEY });
    daemon = await startListeningDaemon({ env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' } });
    token = await createToken(daemon.layout, ['--controller', '--name', 'clients']);
  });
  after(async () => {
    await daemon?.dispose();
    await emulator?.close();
    assert.ok(!existsSync(away.socket), 'no client started a local daemon');
  });

  it('runs the CLI against it with --remote and a token file, and says clearly what is wrong', async () => {
    const tokenFile = join(tempDir('agentd-token-'), 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const env = { AGENTD_REMOTE_CA: daemon.cert.certFile };
    const remote = ['--remote', daemon.url, '--token-file', tokenFile];
    emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo over-the-wire' } }), reply.text('the command said over-the-wire')]);
    const run = await runAgentd(away, ['run', 'go', '--workspace', workspace(), '--yes', ...remote], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /the command said over-the-wire/);
    const listed = await runAgentd(away, ['sessions', '--json', ...remote], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes('"status":"idle"'));
    const status = await runAgentd(away, ['status', '--json', ...remote], { env });
    assert.equal(JSON.parse(status.stdout).dataDir, daemon.layout.home, 'the status is the remote daemon’s');

    const tokens = await runAgentd(away, ['token', 'list', ...remote], { env });
    assert.equal(tokens.code, 1);
    assert.match(tokens.stderr, /for its local socket only: token\/list is refused \(token clients\) \(TokenForbids -33018\)/);
    chmodSync(tokenFile, 0o644);
    const loose = await runAgentd(away, ['sessions', ...remote], { env });
    assert.equal(loose.code, 1);
    assert.match(loose.stderr, /is readable by others \(mode 644\); chmod 600 it/);
    const wrong = await runAgentd(away, ['sessions', '--remote', daemon.url], { env: { ...env, AGENTD_TOKEN: 'agt_wrong' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the connection \(HTTP 401, code -33020\): the token is not valid/);
    const untrusted = await runAgentd(away, ['sessions', '--remote', daemon.url], { env: { AGENTD_TOKEN: token } });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /cannot reach the agentd daemon at wss:\/\/127\.0\.0\.1:\d+: self[- ]signed certificate/);
    for (const out of [run, listed, tokens, loose, wrong, untrusted]) assert.ok(!(out.stdout + out.stderr).includes(token), 'the token is never printed');
  });

  it('bridges an editor with agentd stdio --remote, which exits saying why when its token is revoked', async () => {
    const revocable = await createToken(daemon.layout, ['--controller', '--name', 'editor']);
    let stderr = '';
    const conn = RawConnection.stdio(away, {
      args: ['--remote', daemon.url],
      env: { AGENTD_TOKEN: revocable, AGENTD_REMOTE_CA: daemon.cert.certFile },
      onStderr: (text) => (stderr += text),
    });
    const init = await conn.request(1, 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'editor' } });
    assert.deepEqual((init.result as { access: unknown }).access, { role: 'controller', tokenName: 'editor' });
    const created = await conn.request(2, 'session/create', { workspace: workspace(), title: 'from the editor' });
    const sessionId = (created.result as { sessionId: string }).sessionId;
    const listed = await conn.request(3, 'session/list', {});
    assert.ok((listed.result as { sessions: Array<{ sessionId: string }> }).sessions.some((s) => s.sessionId === sessionId));
    const id = (JSON.parse((await runAgentd(daemon.layout, ['token', 'list', '--json'])).stdout) as { tokens: Array<{ id: string; name: string }> }).tokens.find((t) => t.name === 'editor')!.id;
    await runAgentd(daemon.layout, ['token', 'revoke', id]);
    await conn.waitClosed();
    await until(() => stderr.includes('agentd stdio: the daemon ended the connection: token revoked'), 'the bridge to say why it exits');
  });

  it('serves ACP and MCP clients through AGENTD_REMOTE', async () => {
    const proc = startAcp({ daemon: { layout: away } }, { env: remoteEnv() });
    try {
      await initialize(proc);
      const { sessionId } = await proc.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      emulator.script([reply.text('acp over the network', { chunks: 3 })]);
      const done = await proc.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'hello' }] });
      assert.equal(done.stopReason, 'end_turn');
      const said = proc.updates.filter((n) => n.sessionId === sessionId).map((n) => (n.update.sessionUpdate === 'agent_message_chunk' && n.update.content.type === 'text' ? n.update.content.text : '')).join('');
      assert.equal(said, 'acp over the network');
    } finally {
      await proc.close();
    }
    const mcp = await startMcp(away.home, undefined, remoteEnv());
    try {
      const created = (await mcp.client.callTool({ name: 'agentd_create_session', arguments: { workspace: workspace(), title: 'mcp', permissions: { default: 'allow' } } })) as CallToolResult;
      const sessionId = (created.structuredContent as { sessionId: string }).sessionId;
      emulator.script([reply.text('mcp over the network')]);
      const answered = (await mcp.client.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'hi' } })) as CallToolResult;
      assert.match(JSON.stringify(answered.content), /mcp over the network/);
    } finally {
      await mcp.close();
    }
  });

  it('follows a session over the network across a daemon restart with no gap and no duplicate', async () => {
    const local = await daemon.client();
    const sessionId = await createSession(local, { title: 'followed from afar' });
    emulator.script([reply.text('first turn')]);
    await local.request(SessionPrompt, { sessionId, content: 'one' });
    await settle(local, sessionId);
    local.close();
    const follower = spawnAgentd(away, ['log', sessionId, '--follow', '--json'], { env: remoteEnv() });
    try {
      await follower.until(/"type":"turn\.completed"/);
      daemon = await daemon.restart();
      const again = await daemon.client();
      emulator.script([reply.text('second turn after the restart')]);
      await again.request(SessionPrompt, { sessionId, content: 'two' });
      const all = await settle(again, sessionId);
      again.close();
      await until(() => follower.stdout().includes('second turn after the restart') && follower.stdout().trim().split('\n').length >= all.length, 'the follower to catch up');
      const seqs = follower.stdout().trim().split('\n').map((line) => (JSON.parse(line) as { seq: number }).seq);
      assert.deepEqual(seqs, all.map((e) => e.seq), 'every event once, in order, across the restart');
      assert.match(follower.stderr(), /reconnecting/);
    } finally {
      await follower.close('SIGTERM');
    }
  });
});
