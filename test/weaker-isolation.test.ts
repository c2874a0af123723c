/**
 * Isolation is never silently weaker: when a session's sandbox runs at `namespaces` or
 * `none`, every client shows the daemon's warning, not only daemon.log: `agentd run`
 * and `agentd attach`, VS Code's chat, an ACP editor (as a notice when it takes them,
 * else in the agent's message), and an MCP host (in the turn's summary).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ChatModel } from '../clients/lib/chat-view.js';
import { renderConversation } from '../clients/vscode/src/core/render.js';
import { startAcp } from './support/acp-client.js';
import { allEvents, createSession, ofType, startAgentRig } from './support/agent.js';
import { runAgentd, spawnAgentd } from './support/daemon.js';
import { startMcp } from './support/mcp-client.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { withFixture } from './support/fixture.js';

const NONE_WARNING = /sandbox s_[0-9a-z]+-[0-9a-f]+ runs WITHOUT ISOLATION: its commands can read and write anything this user can/;
const NAMESPACES_WARNING = /sandbox s_[0-9a-z]+-[0-9a-f]+ uses namespaces without bubblewrap: no seccomp filter/;

describe('weaker isolation is shown by every client', () => {
  it('agentd run, agentd attach, VS Code, ACP and MCP all show the warning', async () => {
    // Its sessions ask for less than bubblewrap, which only an explicit floor allows.
    const rig = await startAgentRig({}, ['--isolation-floor', 'none']);
    const { layout } = rig.daemon;
    const admin = await rig.daemon.client();
    const sessionId = await createSession(admin, { title: 'no isolation', sandbox: { isolation: 'none' } });
    const watcher = spawnAgentd(layout, ['attach', sessionId, '--observer']);
    try {
      // agentd run: the warning on stderr, beside "sandbox ready".
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo unguarded' } }), reply.text('ran without a sandbox')]);
      const run = await runAgentd(layout, ['run', 'run a command', '--session', sessionId, '--yes']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /· sandbox ready \(none, \d+ ms\)/);
      assert.match(run.stderr, new RegExp(`! WARNING: weaker isolation: ${NONE_WARNING.source}`));
      // agentd attach (here an observer): the same line.
      await watcher.until(new RegExp(`! WARNING: weaker isolation: ${NONE_WARNING.source}`));

      // VS Code: a warning notice in the chat, rendered as such.
      const events = await allEvents(admin, sessionId);
      const model = new ChatModel(sessionId);
      model.applyEvents(events);
      // Only the isolation warning is counted: a machine with no process limit for sandboxes adds one of its own.
      const notices = model.view().items.filter((i) => i.kind === 'notice' && i.level === 'warning' && NONE_WARNING.test(i.text));
      assert.equal(notices.length, 1, JSON.stringify(model.view().items));
      assert.match((notices[0] as { text: string }).text, new RegExp(`^Weaker isolation: ${NONE_WARNING.source}`));
      assert.match(renderConversation(model.view()), /class="notice warning"[^>]*>Weaker isolation: sandbox .* runs WITHOUT ISOLATION/);

      // ACP, an editor without notices: the warning in the agent's message of the replayed session.
      const plain = startAcp(rig);
      const noticing = startAcp(rig);
      try {
        for (const [editor, notices] of [[plain, false], [noticing, true]] as const) {
          await editor.agent.request(acp.methods.agent.initialize, {
            protocolVersion: acp.PROTOCOL_VERSION,
            clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false, ...(notices ? { session: { notices: {} } } : {}) },
            clientInfo: { name: 'acp-test', version: '0.0.0' },
          });
          await editor.agent.request(acp.methods.agent.session.load, { sessionId, cwd: String(events[0]!.data.workspace), mcpServers: [] });
        }
        const text = plain.updates.flatMap((n) => (n.update.sessionUpdate === 'agent_message_chunk' && n.update.content.type === 'text' ? [n.update.content.text] : [])).join('');
        assert.match(text, new RegExp(`⚠ agentd: ${NONE_WARNING.source}`));
        const shown = noticing.updates.flatMap((n) => (n.update.sessionUpdate === 'notice' && NONE_WARNING.test(String(n.update.description)) ? [n.update] : []));
        assert.equal(shown.length, 1);
        assert.equal(shown[0]!.severity, 'warning');
        assert.match(String(shown[0]!.description), NONE_WARNING);
        assert.doesNotMatch(
          noticing.updates.flatMap((n) => (n.update.sessionUpdate === 'agent_message_chunk' && n.update.content.type === 'text' ? [n.update.content.text] : [])).join(''),
          /WITHOUT ISOLATION/,
          'an editor that shows notices gets a notice, not a message',
        );
      } finally {
        await plain.close();
        await noticing.close();
      }

      // MCP: a session at `namespaces` prompted through agentd mcp: the summary says so.
      const nsSession = await createSession(admin, { title: 'namespaces only', sandbox: { isolation: 'namespaces' } });
      const host = await startMcp(layout.home);
      try {
        rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo in namespaces' } }), reply.text('ran in namespaces')]);
        const result = (await host.client.callTool({ name: 'agentd_prompt', arguments: { sessionId: nsSession, prompt: 'go' } })) as CallToolResult;
        const summary = result.structuredContent as { warnings: string[]; answer: string };
        assert.equal(summary.answer, 'ran in namespaces');
        assert.equal(summary.warnings.filter((w) => NAMESPACES_WARNING.test(w)).length, 1, JSON.stringify(summary.warnings));
        assert.match(result.content.map((c) => (c.type === 'text' ? c.text : '')).join(''), new RegExp(`WARNING \\(weaker sandbox isolation\\): ${NAMESPACES_WARNING.source}`));
        assert.equal(ofType(await allEvents(admin, nsSession), 'sandbox.provisioned')[0]!.data.isolation, 'namespaces');
      } finally {
        await host.close();
      }
    } finally {
      await watcher.close();
      await rig.dispose();
    }
  });

  it('says nothing more at bwrap', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const admin = await rig.daemon.client();
      const sessionId = await createSession(admin);
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo guarded' } }), reply.text('ran in bwrap')]);
      const run = await runAgentd(rig.daemon.layout, ['run', 'run a command', '--session', sessionId, '--yes']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /· sandbox ready \(bwrap, \d+ ms\)/);
      assert.doesNotMatch(run.stderr, /WARNING/);
    });
  });
});
