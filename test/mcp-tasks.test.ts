/**
 * `agentd mcp` as standard MCP hosts drive it, through the TypeScript SDK's client over
 * real stdio: long turns (a 90 s tool run) with the default 60 s request timeout, turns
 * as tasks (2025-11-25), a task found again by a new server after its host went away,
 * permission questions as `input_required` or an early answer, and the errors the spec
 * asks for.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { ResponseMessage } from '@modelcontextprotocol/sdk/shared/responseMessage.js';
import { CallToolResultSchema, McpError, type CallToolResult, type Task } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { API_KEY, workspace } from './support/agent.js';
import { AGENTD_BIN, runAgentd, tempHome } from './support/daemon.js';
import { startMcp, startMcpRig, type McpRig } from './support/mcp-client.js';
import { suiteFixture } from './support/fixture.js';
import { until } from './support/until.js';

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

async function newSession(mcp: McpRig, policy: 'allow' | 'ask'): Promise<string> {
  const result = (await mcp.client.callTool({ name: 'agentd_create_session', arguments: { workspace: workspace(), permissions: { default: policy } } })) as CallToolResult;
  assert.equal(result.isError, undefined, text(result));
  return (result.structuredContent as { sessionId: string }).sessionId;
}

/** Runs agentd_prompt as a task to its end; every message the SDK's stream gave. */
async function promptAsTask(mcp: McpRig, sessionId: string, prompt: string): Promise<Array<ResponseMessage<CallToolResult>>> {
  const messages: Array<ResponseMessage<CallToolResult>> = [];
  const stream = mcp.client.experimental.tasks.callToolStream({ name: 'agentd_prompt', arguments: { sessionId, prompt } }, CallToolResultSchema, { task: {} });
  for await (const message of stream) messages.push(message as ResponseMessage<CallToolResult>);
  return messages;
}

function resultOf(messages: Array<ResponseMessage<CallToolResult>>): CallToolResult {
  const last = messages.at(-1)!;
  assert.equal(last.type, 'result', JSON.stringify(last));
  return (last as { result: CallToolResult }).result;
}

async function mcpError(promise: Promise<unknown>): Promise<McpError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof McpError, String(error));
    return error;
  }
  assert.fail('no error');
}

describe('agentd mcp: long turns, tasks and the spec', () => {
  const mcpRig = suiteFixture(startMcpRig);
  const rig = () => mcpRig().rig;
  const mcp = () => mcpRig().mcp;

  it('a 90 s turn: a plain call with resetTimeoutOnProgress under the default 60 s timeout, and a task', async () => {
    const plainSession = await newSession(mcp(), 'allow');
    const taskSession = await newSession(mcp(), 'allow');
    // Both turns run a 90 s tool call (no model event meanwhile), then answer.
    const sleep = reply.toolUse({ name: 'bash', input: { command: 'sleep 90 && echo slept' } });
    rig().emulator.script([sleep, sleep, reply.text('slept'), reply.text('slept')]);
    const progress: string[] = [];
    const plain = mcp().client.callTool({ name: 'agentd_prompt', arguments: { sessionId: plainSession, prompt: 'sleep' } }, undefined, {
      resetTimeoutOnProgress: true,
      onprogress: (p) => void progress.push(p.message ?? ''),
    });
    const asTask = promptAsTask(mcp(), taskSession, 'sleep');
    const [plainResult, taskMessages] = await Promise.all([plain, asTask]);

    const summary = (plainResult as CallToolResult).structuredContent as { answer: string; outcome: string; toolCalls: Array<{ ok: boolean }> };
    const results = async () => JSON.stringify(await mcp().client.callTool({ name: 'agentd_read_events', arguments: { sessionId: plainSession, types: ['tool.result'] } }));
    assert.deepEqual([summary.answer, summary.outcome, summary.toolCalls.map((c) => c.ok)], ['slept', 'completed', [true]], summary.toolCalls.every((c) => c.ok) ? '' : await results());
    // Progress came while the tool ran, not only when events landed.
    assert.ok(progress.some((m) => /^running for \d+ s; last: /.test(m)), JSON.stringify(progress));

    assert.equal(taskMessages[0]!.type, 'taskCreated');
    const statuses = taskMessages.filter((m) => m.type === 'taskStatus').map((m) => (m as { task: Task }).task.status);
    assert.ok(statuses.includes('working'), JSON.stringify(statuses));
    assert.equal(statuses.at(-1), 'completed');
    assert.equal((resultOf(taskMessages).structuredContent as { answer: string }).answer, 'slept');
  });

  it('a task outlives its host: a new agentd mcp finds it by id, lists nothing else, cancels it', async () => {
    const first = await startMcp(rig().daemon.layout.home);
    const sessionId = await newSession(first, 'allow');
    rig().emulator.script([reply.hang()]);
    const stream = first.client.experimental.tasks.callToolStream({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'hang' } }, CallToolResultSchema, {
      task: {},
    });
    const created = (await stream.next()).value as { type: string; task: Task };
    assert.equal(created.type, 'taskCreated');
    const { taskId } = created.task;
    assert.deepEqual((await first.client.experimental.tasks.listTasks()).tasks.map((t) => t.taskId), [taskId]);
    await first.close();

    const second = await startMcp(rig().daemon.layout.home);
    try {
      const found = await second.client.experimental.tasks.getTask(taskId);
      assert.deepEqual([found.taskId, found.status, found.ttl], [taskId, 'working', null]);
      const cancelled = await second.client.experimental.tasks.cancelTask(taskId);
      assert.equal(cancelled.status, 'cancelled');
      const result = (await second.client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema)) as CallToolResult;
      assert.equal((result.structuredContent as { outcome: string }).outcome, 'interrupted');
      assert.equal((await second.client.experimental.tasks.getTask(taskId)).status, 'cancelled');
      // A made-up id, and one naming a turn that is not in the log, are not found.
      for (const bogus of ['nope', `${sessionId}.t_000000000000.1`]) {
        assert.equal((await mcpError(second.client.experimental.tasks.getTask(bogus))).code, -32602);
      }
    } finally {
      await second.close();
    }
  });

  it('cancelling a queued task leaves the running turn alone and stops its own turn once it starts', async () => {
    const sessionId = await newSession(mcp(), 'allow');
    rig().emulator.script([reply.hang(), reply.hang()]);
    const before = rig().emulator.requests.length;
    const first = mcp().client.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'runs first' } });
    await rig().emulator.waitFor(() => rig().emulator.requests.length > before && rig().emulator.inFlight > 0, 30_000);
    const stream = mcp().client.experimental.tasks.callToolStream({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'queued' } }, CallToolResultSchema, { task: {} });
    const { task } = (await stream.next()).value as { task: Task };
    assert.equal((await mcp().client.experimental.tasks.cancelTask(task.taskId)).status, 'cancelled');
    const events = async () =>
      ((await mcp().client.callTool({ name: 'agentd_read_events', arguments: { sessionId, types: ['turn.interrupted'] } })) as CallToolResult).structuredContent as {
        events: Array<{ data: { turnId: string } }>;
      };
    assert.deepEqual((await events()).events, [], 'the running turn was not interrupted for the queued one');
    // The running turn ends (interrupted by its own caller); the cancelled one starts and is stopped.
    await mcp().client.callTool({ name: 'agentd_interrupt', arguments: { sessionId } });
    assert.equal(((await first) as CallToolResult).structuredContent?.outcome, 'interrupted');
    const result = (await mcp().client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema)) as CallToolResult;
    assert.equal((result.structuredContent as { outcome: string; turnId: string }).outcome, 'interrupted');
    const interrupted = (await events()).events.map((e) => e.data.turnId);
    assert.equal(interrupted.length, 2);
    assert.equal(interrupted[1], (result.structuredContent as { turnId: string }).turnId);
  });

  it('a permission question under a task is input_required; the host answers it by elicitation', async () => {
    const seen: Task[] = [];
    const related: unknown[] = [];
    const host: McpRig = await startMcp(rig().daemon.layout.home, async (_message, meta) => {
      // The question came by the task's side channel (tasks/result), tagged with the task.
      related.push(meta?.['io.modelcontextprotocol/related-task']);
      // While the question is open the task says so, naming it.
      seen.push(await until(async () => (await host.client.experimental.tasks.listTasks()).tasks.find((t) => t.status === 'input_required'), 'input_required'));
      return { action: 'accept', content: { decision: 'allow' } };
    });
    try {
      const sessionId = await newSession(host, 'ask');
      rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo asked' } }), reply.text('ran it')]);
      const messages = await promptAsTask(host, sessionId, 'ask first');
      assert.equal(seen.length, 1);
      assert.deepEqual(related, [{ taskId: seen[0]!.taskId }]);
      assert.match(seen[0]!.statusMessage ?? '', new RegExp(`session ${sessionId} waits for permission to run bash .*echo asked`));
      assert.equal((resultOf(messages).structuredContent as { answer: string }).answer, 'ran it');
    } finally {
      await host.close();
    }
  });

  it('under ask, a host without elicitation gets the question at once, and answers it with a later call', async () => {
    const sessionId = await newSession(mcp(), 'ask');
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo later' } }), reply.text('answered later')]);
    const result = (await mcp().client.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'needs permission' } })) as CallToolResult;
    const waiting = result.structuredContent as { sessionId: string; waitingFor: { toolUseId: string; tool: string } };
    assert.equal(waiting.sessionId, sessionId);
    assert.equal(waiting.waitingFor.tool, 'bash');
    assert.match(text(result), new RegExp(`session ${sessionId} waits for permission to run bash .*echo later`));
    assert.match(text(result), /agentd_answer_permission/);

    const answered = (await mcp().client.callTool({
      name: 'agentd_answer_permission',
      arguments: { sessionId, toolUseId: waiting.waitingFor.toolUseId, decision: 'allow' },
    })) as CallToolResult;
    assert.equal(answered.isError, undefined, text(answered));
    const ended = await until(async () => {
      const page = (await mcp().client.callTool({ name: 'agentd_read_events', arguments: { sessionId, types: ['assistant.message', 'turn.completed'] } })) as CallToolResult;
      const events = (page.structuredContent as { events: Array<{ type: string; data: { content?: Array<{ text?: string }> } }> }).events;
      return events.some((e) => e.type === 'turn.completed') && events;
    }, 'the turn to complete after the answer');
    assert.equal(ended.at(-2)!.data.content![0]!.text, 'answered later');
  });

  it('answers as the spec says: unknown tool and missing params -32602, a task of a task-less tool -32601, a missing resource -32002, no list_changed promised it never sends', async () => {
    assert.equal((await mcpError(mcp().client.callTool({ name: 'no_such_tool', arguments: {} }))).code, -32602);
    // A task asked of a tool that runs none (taskSupport forbidden): -32601.
    const asTask = mcp().client.experimental.tasks.callToolStream({ name: 'agentd_list_sessions', arguments: {} }, CallToolResultSchema, { task: {} });
    const refused = (await asTask.next()).value as { type: string; error?: McpError };
    assert.equal(refused.type, 'error');
    assert.equal(refused.error?.code, -32601);
    const raw = z.object({}).passthrough();
    const missingName = await mcpError(mcp().client.request({ method: 'tools/call', params: { arguments: {} } } as never, raw));
    assert.equal(missingName.code, -32602);
    assert.match(missingName.message, /params\.name/);
    assert.equal((await mcpError(mcp().client.request({ method: 'resources/read', params: {} } as never, raw))).code, -32602);
    for (const uri of ['agentd://sessions/s_0000000000unknown/events', 'file:///etc/passwd']) {
      assert.equal((await mcpError(mcp().client.readResource({ uri }))).code, -32002, uri);
    }
    assert.equal((await mcpError(mcp().client.subscribeResource({ uri: 'agentd://sessions/s_0000000000unknown/events' }))).code, -32002);
    assert.equal(mcp().client.getServerCapabilities()?.resources?.listChanged, false);
    assert.equal(mcp().client.getServerCapabilities()?.tools?.listChanged, false);
    const tools = await mcp().client.listTools();
    assert.equal(tools.tools.find((t) => t.name === 'agentd_prompt')?.execution?.taskSupport, 'optional');
    assert.deepEqual(mcp().errors, []);
  });

  it('the MCP Inspector CLI, another client, lists and calls tools and gets the spec errors', async () => {
    const cli = createRequire(import.meta.url).resolve('@modelcontextprotocol/inspector-cli/build/index.js');
    // The CLI looks for its own package.json relative to the working directory: run it where that works.
    const inspect = (...args: string[]) =>
      promisify(execFile)(process.execPath, [cli, process.execPath, ...args, '--', AGENTD_BIN, 'mcp', '--home', rig().daemon.layout.home], { cwd: dirname(cli) }).then(
        (r) => ({ ok: true, out: r.stdout }),
        (e: { stdout: string; stderr: string }) => ({ ok: false, out: `${e.stdout}${e.stderr}` }),
      );
    const listed = await inspect('--method', 'tools/list');
    assert.ok(listed.ok, listed.out);
    const tools = (JSON.parse(listed.out) as { tools: Array<{ name: string; execution?: { taskSupport?: string } }> }).tools;
    assert.equal(tools.find((t) => t.name === 'agentd_prompt')?.execution?.taskSupport, 'optional');
    const called = await inspect('--method', 'tools/call', '--tool-name', 'agentd_list_sessions');
    assert.ok(called.ok, called.out);
    assert.ok(Array.isArray((JSON.parse(called.out) as { structuredContent: { sessions: unknown[] } }).structuredContent.sessions));
    const unknown = await inspect('--method', 'tools/call', '--tool-name', 'no_such_tool');
    assert.equal(unknown.ok, false);
    assert.match(unknown.out, /MCP error -32602: Unknown tool: no_such_tool/);
    const missing = await inspect('--method', 'resources/read', '--uri', 'agentd://sessions/s_0000000000unknown/events');
    assert.match(missing.out, /MCP error -32002/);
  });

  it('a host with a minimal environment: --home picks the data dir, config.json the model API, the vault the key', async () => {
    const layout = tempHome();
    writeFileSync(join(layout.home, 'config.json'), JSON.stringify({ model: { baseUrl: rig().emulator.url } }));
    // What a host passes (the SDK adds HOME, PATH, USER...), and the test run's markers so its leftovers are found.
    const env = { AGENTD_TEST_RUN: process.env.AGENTD_TEST_RUN ?? '', TMPDIR: process.env.TMPDIR ?? '/tmp' };
    const host = new Client({ name: 'minimal-host', version: '0' });
    await host.connect(new StdioClientTransport({ command: process.execPath, args: [AGENTD_BIN, 'mcp', '--home', layout.home], env, stderr: 'pipe' }));
    try {
      // The first call starts the daemon, in that data dir, with no API key in its environment.
      const created = (await host.callTool({ name: 'agentd_create_session', arguments: { workspace: workspace(), permissions: { default: 'allow' } } })) as CallToolResult;
      const sessionId = (created.structuredContent as { sessionId: string }).sessionId;
      const stored = await runAgentd(layout, ['vault', 'set', 'ANTHROPIC_API_KEY'], { input: API_KEY });
      assert.equal(stored.code, 0, stored.stderr);
      rig().emulator.script([reply.text('reached through config.json with the vault key')]);
      const result = (await host.callTool({ name: 'agentd_prompt', arguments: { sessionId, prompt: 'hello' } })) as CallToolResult;
      assert.equal((result.structuredContent as { answer: string }).answer, 'reached through config.json with the vault key', text(result));
    } finally {
      await host.close();
      await runAgentd(layout, ['stop']);
      rmSync(layout.home, { recursive: true, force: true });
    }
  });
});
