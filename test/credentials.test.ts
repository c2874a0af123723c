/** Credentials end to end: remote MCP servers called by the daemon, the proxy, git through the proxy. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SessionPrompt, VaultSet } from '../protocol/index.js';
import { reply } from './support/model-emulator.js';
import { createSession, ofType, settle, startAgentRig, type AgentRig } from './support/agent.js';
import { startMcpUpstream } from './support/upstreams.js';

describe('remote MCP servers', () => {
  let rig: AgentRig;
  before(async () => {
    rig = await startAgentRig();
  });
  after(() => rig.dispose());

  it('are called by the daemon with the vault token, outside any sandbox, namespaced for the model', async () => {
    const token = `mcp-token-${Math.random().toString(36).slice(2)}`;
    const upstream = await startMcpUpstream(token);
    try {
      const client = await rig.daemon.client();
      await client.request(VaultSet, { name: 'NOTES_TOKEN', value: token, binding: { kind: 'mcp', url: upstream.url } });
      const sessionId = await createSession(client, { mcpServers: [{ name: 'notes', type: 'http', url: upstream.url, credential: 'NOTES_TOKEN' }] });
      rig.emulator.script([reply.toolUse({ name: 'mcp__notes__lookup', input: { word: 'agentd' } }), reply.text('The notes have 3 entries.')]);
      await client.request(SessionPrompt, { sessionId, content: 'look it up' });
      const events = await settle(client, sessionId);
      const offered = (rig.emulator.requests.at(-1)!.body as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
      assert.ok(offered.includes('mcp__notes__lookup'));
      const started = ofType(events, 'tool.started')[0]!;
      assert.equal(started.data.where, 'daemon');
      const result = ofType(events, 'tool.result')[0]!;
      assert.equal(result.data.isError, false);
      assert.match(JSON.stringify(result.data.content), /notes on agentd: found 3 entries/);
      assert.deepEqual(upstream.calls, ['agentd']);
      assert.ok(upstream.seen.every((h) => h === `Bearer ${token}`), 'every request carried the token');
      assert.equal(ofType(events, 'sandbox.provisioned').length, 0, 'no sandbox was involved');
    } finally {
      await upstream.close();
    }
  });
});
