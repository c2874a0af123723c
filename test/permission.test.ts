/**
 * A client answers only for its own sessions. A connection is a controller of a session
 * only when it created, prompted or attached to it as controller; `permission/request`
 * goes to those only, each question names its session, and answering another session's
 * question is refused with NotController. Tried from raw connections and from every
 * client: `agentd run` (--yes, and with no terminal), VS Code's core, ACP and MCP, each
 * next to an unrelated session whose question waits for its own controller.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connect, type AgentdClient } from '../clients/lib/index.js';
import { ApprovalsState, type PendingApproval } from '../clients/vscode/src/core/approvals.js';
import { AgentdConnection } from '../clients/vscode/src/core/connection.js';
import {
  AgentdError,
  ErrorCode,
  PermissionAnswer,
  SessionAttach,
  SessionCreate,
  SessionGet,
  SessionPrompt,
  type PermissionQuestion,
} from '../protocol/index.js';
import { initialize, startAcp } from './support/acp-client.js';
import { allEvents, createSession, ofType, settle, startAgentRig, waitForEvent, workspace, type AgentRig } from './support/agent.js';
import { AGENTD_BIN, runAgentd } from './support/daemon.js';
import { startMcp } from './support/mcp-client.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { until } from './support/until.js';
import { withFixture } from './support/fixture.js';

const rejectsWith = (code: number) => (error: unknown) => error instanceof AgentdError && error.code === code;

/** A client that records the questions it is asked and answers only when the test says. */
async function asker(rig: AgentRig, name: string) {
  const asked: PermissionQuestion[] = [];
  const replies = new Map<string, (decision: 'allow' | 'deny') => void>();
  const client = await connect({
    layout: rig.daemon.layout,
    autostart: false,
    clientName: name,
    onPermissionRequest: (q) =>
      new Promise((resolve) => {
        asked.push(q);
        replies.set(q.toolUseId, (decision) => resolve({ decision }));
      }),
  });
  return { client, asked, reply: (toolUseId: string, decision: 'allow' | 'deny') => replies.get(toolUseId)!(decision) };
}

/** A session, made by `owner`, parked on an unanswered question of its own. */
async function unrelatedWaiting(rig: AgentRig, owner: AgentdClient, command = 'echo unrelated'): Promise<{ sessionId: string; toolUseId: string }> {
  const sessionId = await createSession(owner, { title: 'unrelated', permissions: { default: 'ask' } });
  rig.emulator.script([reply.toolUse({ name: 'bash', input: { command } })]);
  await owner.request(SessionPrompt, { sessionId, content: 'wait for your controller' });
  const asked = await waitForEvent(owner, sessionId, (e) => e.type === 'permission.requested');
  return { sessionId, toolUseId: String(asked.data.toolUseId) };
}

/** The unrelated session still waits: nobody decided anything for it. */
async function stillWaiting(client: AgentdClient, sessionId: string): Promise<void> {
  assert.equal((await client.request(SessionGet, { sessionId })).status, 'waiting');
  assert.equal(ofType(await allEvents(client, sessionId), 'permission.resolved').length, 0, 'no answer was given for the unrelated session');
}

/**
 * A client under test (`open`: connected before anything is asked), and beside it an
 * unrelated session of an owner's, waiting on its own question; `body` drives the client,
 * and after it the unrelated question must still be open: nothing the client did answered it.
 */
async function besideUnrelatedQuestion<C>(
  open: (rig: AgentRig) => C | Promise<C>,
  close: (client: C) => Promise<unknown>,
  body: (client: C, rig: AgentRig, unrelated: { sessionId: string; owner: AgentdClient }) => Promise<void>,
): Promise<void> {
  const rig = await startAgentRig();
  let client: C | undefined;
  try {
    client = await open(rig);
    const owner = await rig.daemon.client({ name: 'owner' });
    const { sessionId } = await unrelatedWaiting(rig, owner);
    await body(client, rig, { sessionId, owner });
    await stillWaiting(owner, sessionId);
    owner.close();
  } finally {
    if (client !== undefined) await close(client);
    await rig.dispose();
  }
}

describe('permission questions go only to controllers', () => {
  it('asks each session’s controllers only, names the session, and refuses answers from anyone else', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const x = await asker(rig, 'x');
      const y = await asker(rig, 'y');
      const sessionA = await createSession(x.client, { title: 'session A', permissions: { default: 'ask' } });
      const sessionB = await createSession(y.client, { title: 'session B', permissions: { default: 'ask' } });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo a' } }), reply.text('a done')]);
      await x.client.request(SessionPrompt, { sessionId: sessionA, content: 'a' });
      await until(() => x.asked.length === 1, 'x to be asked');
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo b' } }), reply.text('b done')]);
      await y.client.request(SessionPrompt, { sessionId: sessionB, content: 'b' });
      await until(() => y.asked.length === 1, 'y to be asked');
      assert.deepEqual(x.asked.map((q) => [q.sessionId, q.sessionTitle]), [[sessionA, 'session A']], 'x, which created A, is asked A’s question only');
      assert.deepEqual(y.asked.map((q) => [q.sessionId, q.sessionTitle]), [[sessionB, 'session B']]);
      const questionA = x.asked[0]!;
      const questionB = y.asked[0]!;

      // The attack: x answers B's question, by id, and an observer of B does too.
      await assert.rejects(x.client.request(PermissionAnswer, { sessionId: sessionB, toolUseId: questionB.toolUseId, decision: 'allow' }), rejectsWith(ErrorCode.NotController));
      await assert.rejects(x.client.request(PermissionAnswer, { sessionId: sessionA, toolUseId: questionB.toolUseId, decision: 'allow' }), rejectsWith(ErrorCode.QuestionNotOpen));
      const observer = await rig.daemon.client({ name: 'observer' });
      await observer.request(SessionAttach, { sessionId: sessionB, role: 'observer' });
      await assert.rejects(observer.request(PermissionAnswer, { sessionId: sessionB, toolUseId: questionB.toolUseId, decision: 'allow' }), rejectsWith(ErrorCode.NotController));
      assert.equal((await observer.request(SessionGet, { sessionId: sessionB })).status, 'waiting', 'B still waits for its controller');

      // Its controller answers by id; the answer counts once.
      assert.deepEqual(await y.client.request(PermissionAnswer, { sessionId: sessionB, toolUseId: questionB.toolUseId, decision: 'deny' }), {});
      await assert.rejects(y.client.request(PermissionAnswer, { sessionId: sessionB, toolUseId: questionB.toolUseId, decision: 'allow' }), rejectsWith(ErrorCode.QuestionNotOpen));
      x.reply(questionA.toolUseId, 'allow');
      const logA = await settle(x.client, sessionA);
      const logB = await settle(y.client, sessionB);
      assert.deepEqual(ofType(logA, 'permission.resolved').map((e) => [e.data.decision, String(e.data.by).replace(/#\d+$/, '')]), [['allow', 'x']]);
      assert.deepEqual(ofType(logB, 'permission.resolved').map((e) => [e.data.decision, String(e.data.by).replace(/#\d+$/, '')]), [['deny', 'y']]);
      x.client.close();
      y.client.close();
    });
  });

  it('makes a connection a controller when it prompts or attaches, and asks it the questions already open', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const owner = await rig.daemon.client({ name: 'owner' });
      const { sessionId, toolUseId } = await unrelatedWaiting(rig, owner);
      const prompter = await asker(rig, 'prompter');
      const attacher = await asker(rig, 'attacher');
      const bystander = await asker(rig, 'bystander');
      await prompter.client.request(SessionPrompt, { sessionId, content: 'a second prompt, queued' });
      await attacher.client.request(SessionAttach, { sessionId, role: 'controller' });
      await until(() => prompter.asked.length === 1 && attacher.asked.length === 1, 'the new controllers to be asked');
      assert.equal(prompter.asked[0]!.toolUseId, toolUseId);
      rig.emulator.script([reply.text('first turn done'), reply.text('second turn done')]);
      attacher.reply(toolUseId, 'allow');
      const log = await settle(owner, sessionId);
      assert.equal(ofType(log, 'turn.completed').length, 2);
      assert.deepEqual(bystander.asked, [], 'a connection that only looked on was never asked');
      assert.match(String(ofType(log, 'permission.resolved')[0]!.data.by), /^attacher#/);
      for (const c of [owner, prompter.client, attacher.client, bystander.client]) c.close();
    });
  });
});

describe('every client answers for its own sessions only', () => {
  it('agentd run --yes and agentd run </dev/null leave an unrelated session’s question alone', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const owner = await rig.daemon.client({ name: 'owner' });
      const unrelated = await unrelatedWaiting(rig, owner);
      const cwd = workspace();
      // --yes: before the fix it allowed the unrelated question the moment it connected.
      const yes = await runAgentd(rig.daemon.layout, ['run', 'just talk', '--workspace', cwd, '--yes']);
      assert.equal(yes.code, 0, yes.stderr);
      assert.equal(yes.stdout.trim(), 'echo: just talk');
      // No terminal: before the fix it denied the unrelated question.
      const noTty = await runAgentd(rig.daemon.layout, ['run', 'talk without a terminal', '--workspace', cwd]);
      assert.equal(noTty.code, 0, noTty.stderr);
      await stillWaiting(owner, unrelated.sessionId);

      // --yes on a session of its own that asks: run answers that one, and only that one.
      const mine = await createSession(owner, { title: 'mine', permissions: { default: 'ask' } });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo mine' } }), reply.text('mine done')]);
      const driven = await runAgentd(rig.daemon.layout, ['run', 'use a tool', '--session', mine, '--yes']);
      assert.equal(driven.code, 0, driven.stderr);
      assert.match(String(ofType(await settle(owner, mine), 'permission.resolved')[0]!.data.by), /^agentd-run#/);
      await stillWaiting(owner, unrelated.sessionId);
      owner.close();
    });
  });

  it('VS Code is asked about the sessions it created, prompted or opened, and shows which session asks', async () => {
    const approvals = new ApprovalsState();
    const added: PendingApproval[] = [];
    approvals.onChange((c) => c.kind === 'added' && added.push(c.approval));
    const openVsCode = (rig: AgentRig) => {
      const conn = new AgentdConnection({
        bridge: { command: process.execPath, args: [AGENTD_BIN, 'stdio'], env: { ...process.env, AGENTD_HOME: rig.daemon.layout.home } },
        clientName: 'vscode',
        onPermissionRequest: approvals.handler,
      });
      conn.start();
      return conn;
    };
    await besideUnrelatedQuestion(openVsCode, (conn) => conn.dispose(), async (conn, rig, unrelated) => {
      const { sessionId } = await conn.request(SessionCreate, { workspace: workspace(), title: 'in vscode', permissions: { default: 'ask' } });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo vscode' } }), reply.text('vscode done')]);
      await conn.request(SessionPrompt, { sessionId, content: 'go' });
      const own = await until(() => added[0], 'VS Code’s own question');
      assert.deepEqual([own.sessionId, own.sessionTitle, own.summary], [sessionId, 'in vscode', 'bash: echo vscode']);
      assert.ok(approvals.answer(own.id, 'allow'));
      await settle(unrelated.owner, sessionId);
      assert.deepEqual(added.map((a) => a.sessionId), [sessionId], 'the unrelated session’s question never reached VS Code');
      await stillWaiting(unrelated.owner, unrelated.sessionId);

      // Opening the unrelated session's chat makes VS Code one of its controllers (asked, not answering).
      await conn.control(unrelated.sessionId);
      const theirs = await until(() => added[1], 'the opened session’s question');
      assert.deepEqual([theirs.sessionId, theirs.sessionTitle], [unrelated.sessionId, 'unrelated']);
    });
  });

  it('an ACP editor is asked about its own sessions only', async () => {
    await besideUnrelatedQuestion(startAcp, (editor) => editor.close(), async (editor, rig) => {
      await initialize(editor);
      const { sessionId } = await editor.agent.request(acp.methods.agent.session.new, { cwd: workspace(), mcpServers: [] });
      rig.emulator.script([reply.toolUse({ id: 'toolu_acp_own', name: 'bash', input: { command: 'echo acp' } }), reply.text('acp done')]);
      const result = await editor.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'go' }] });
      assert.equal(result.stopReason, 'end_turn');
      assert.deepEqual(editor.permissionRequests.map((r) => [r.sessionId, r.toolCall.toolCallId]), [[sessionId, 'toolu_acp_own']]);
    });
  });

  it('an MCP host is asked (by elicitation) about the sessions it drives only, with the session named', async () => {
    const asked: string[] = [];
    const openHost = (rig: AgentRig) => startMcp(rig.daemon.layout.home, (message) => (asked.push(message), { action: 'accept', content: { decision: 'allow' } }));
    await besideUnrelatedQuestion(openHost, (host) => host.close(), async (host, rig) => {
      const created = (await host.client.callTool({ name: 'agentd_create_session', arguments: { workspace: workspace(), title: 'driven by mcp', permissions: { default: 'ask' } } })) as CallToolResult;
      const sessionId = (created.structuredContent as { sessionId: string }).sessionId;
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo mcp' } }), reply.text('mcp done')]);
      const prompted = (await host.client.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'go' } })) as CallToolResult;
      assert.equal((prompted.structuredContent as { answer: string }).answer, 'mcp done');
      assert.deepEqual(asked, [`agentd session "driven by mcp" (${sessionId}) wants to run bash: echo mcp`]);
    });
  });
});
