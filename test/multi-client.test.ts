/**
 * One live session, several kinds of client at once: the CLI follows it, an MCP host
 * prompts it, an ACP editor answers its permission question, an observer watches;
 * all see the same events in the same order.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, SessionAttach, SessionFork, SessionGet, SessionInterrupt, SessionPrompt, type Event } from '../protocol/index.js';
import { initialize, startAcp } from './support/acp-client.js';
import { allEvents, assertLogInvariants, createSession, ofType, settle, startAgentRig, workspace } from './support/agent.js';
import { AGENTD_BIN } from './support/daemon.js';
import { startMcp } from './support/mcp-client.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { until } from './support/until.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withFixture } from './support/fixture.js';

const sequence = (events: Array<Pick<Event, 'seq' | 'type'>>) => events.map((e) => `${e.seq}:${e.type}`);

describe('many clients on one session', () => {
  it('CLI, MCP and ACP clients attached to one session see the same events; one prompts, another answers', async () => {
    const rig = await startAgentRig();
    const admin = await rig.daemon.client();
    const cwd = workspace();
    const sessionId = await createSession(admin, { workspace: cwd, permissions: { default: 'ask' } });
    // CLI: agentd log --follow --json, as a terminal would.
    const follower = spawn(process.execPath, [AGENTD_BIN, 'log', sessionId, '--follow', '--json'], { env: { ...process.env, AGENTD_HOME: rig.daemon.layout.home } });
    let cliOut = '';
    follower.stdout.on('data', (d) => (cliOut += d));
    const cliEvents = () => cliOut.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
    // ACP: an editor that opened the session and answers permission questions.
    const editor = startAcp(rig);
    editor.answer = () => ({ outcome: { outcome: 'selected', optionId: 'allow' } });
    // MCP: a host that prompts.
    const host = await startMcp(rig.daemon.layout.home);
    // An observer: may watch, may not prompt.
    const observer = await rig.daemon.client({ name: 'observer', permissionRequests: true });
    await observer.request(SessionAttach, { sessionId, role: 'observer' });
    try {
      await initialize(editor);
      await editor.agent.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
      await assert.rejects(observer.request(SessionPrompt, { sessionId, content: 'not allowed' }), (e: { code?: number }) => e.code === ErrorCode.NotController);
      await assert.rejects(observer.request(SessionInterrupt, { sessionId }), (e: { code?: number }) => e.code === ErrorCode.NotController);

      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo seen by all' } }), reply.text('Everyone saw this.', { chunks: 3 })]);
      // As a task: the host cannot answer the question itself (no elicitation), so a plain call
      // would return at once naming it; the task waits, input_required, until the editor answers.
      const stream = host.client.experimental.tasks.callToolStream({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'say it to everyone' } }, CallToolResultSchema, {
        task: {},
      });
      let answer: CallToolResult | undefined;
      for await (const message of stream) if (message.type === 'result') answer = message.result as CallToolResult;
      assert.match(answer!.content.map((c) => (c.type === 'text' ? c.text : '')).join(''), /Everyone saw this\./);
      const events = await settle(admin, sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      const resolved = ofType(events, 'permission.resolved');
      assert.equal(resolved.length, 1);
      assert.match(String(resolved[0]!.data.by), /^agentd-acp#/, 'the ACP editor answered');

      await until(() => cliEvents().length >= events.length, 'the CLI follower to print every event');
      assert.deepEqual(sequence(cliEvents()), sequence(events), 'the CLI saw every event, in order');
      const read = (await host.client.callTool({ name: 'agentd_read_events', arguments: { sessionId, limit: 1000 } })) as CallToolResult;
      assert.deepEqual(sequence((read.structuredContent as { events: Event[] }).events), sequence(events), 'the MCP host reads the same log');
      const updates = editor.updates.filter((n) => n.sessionId === sessionId).map((n) => n.update);
      const kinds = updates.map((u) => u.sessionUpdate).filter((k) => k !== 'user_message_chunk' && k !== 'available_commands_update');
      const firstTool = kinds.indexOf('tool_call');
      const lastText = kinds.lastIndexOf('agent_message_chunk');
      assert.ok(firstTool >= 0 && lastText > firstTool, `the editor saw the tool call before the final text: ${kinds.join(',')}`);
    } finally {
      // Gone before the daemon is killed: a follower that outlived it would start another.
      follower.kill('SIGINT');
      await new Promise((r) => (follower.exitCode !== null ? r(null) : follower.on('close', r)));
      observer.close();
      await host.close();
      await editor.close();
      await rig.dispose();
    }
  });

  it('forks a session at any position into one that runs on its own, with a copy of the workspace as it is now', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client);
      rig.emulator.script([reply.text('first answer'), reply.text('second answer')]);
      await client.request(SessionPrompt, { sessionId, content: 'first' });
      await settle(client, sessionId);
      await client.request(SessionPrompt, { sessionId, content: 'second' });
      const original = await settle(client, sessionId);
      const sourceWorkspace = String(original[0]!.data.workspace);
      writeFileSync(join(sourceWorkspace, 'notes.txt'), 'written after both turns');
      const at = ofType(original, 'turn.completed')[0]!.seq + 1; // just after the first turn
      const { sessionId: forkId } = await client.request(SessionFork, { sessionId, at });
      const forked = await allEvents(client, forkId);
      assert.deepEqual(
        forked.slice(0, at).map((e) => [e.seq, e.type, e.data]),
        original.slice(0, at).map((e) => [e.seq, e.type, e.data]),
        'events [0, at) copied',
      );
      assert.equal(forked[at]!.type, 'session.forked');
      const info = await client.request(SessionGet, { sessionId: forkId });
      assert.deepEqual(info.forkedFrom, { sessionId, at });
      assert.notEqual(info.workspace, sourceWorkspace);
      assert.equal(readFileSync(join(info.workspace, 'notes.txt'), 'utf8'), 'written after both turns', 'files are copied as they are now, not rewound');
      rig.emulator.script([reply.text('the fork goes its own way')]);
      await client.request(SessionPrompt, { sessionId: forkId, content: 'third, in the fork' });
      const after = await settle(client, forkId);
      const body = rig.emulator.requests.at(-1)!.body as { messages: Array<{ content: unknown }> };
      assert.doesNotMatch(JSON.stringify(body.messages), /second/, 'the fork does not know what came after its position');
      assert.match(JSON.stringify(body.messages), /first answer/);
      assert.equal(ofType(after, 'turn.completed').length, 2);
      assert.equal(ofType(await allEvents(client, sessionId), 'user.message').length, 2, 'the original is untouched');
    });
  });
});
