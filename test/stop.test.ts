/**
 * `agentd stop` means stopped: every kind of connected client is told, none starts the
 * daemon again on its own, and each resumes after an explicit start. And `stop` drains:
 * a model call or tool call in flight finishes and is recorded, nothing new starts,
 * and the turn carries on from the log when the daemon next starts.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as acp from '@agentclientprotocol/sdk';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AgentdConnection, type ConnectionState } from '../clients/vscode/src/core/connection.js';
import { connect } from '../clients/lib/index.js';
import { PROTOCOL_VERSION, SessionPrompt, type Event } from '../protocol/index.js';
import { initialize, startAcp } from './support/acp-client.js';
import { API_KEY, assertLogInvariants, createSession, ofType, settle, startAgentRig, waitForEvent, workspace, type AgentRig } from './support/agent.js';
import { AGENTD_BIN, RawConnection, readLog, runAgentd, spawnAgentd } from './support/daemon.js';
import { startMcp } from './support/mcp-client.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { until } from './support/until.js';

/** A reconnect gate the test opens, counting how often the connection came to wait on it. */
function gate() {
  let release: (() => void) | undefined;
  const state = { waits: 0 };
  return {
    state,
    wait: (signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        state.waits += 1;
        release = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      }),
    open: () => release?.(),
  };
}

async function untilState(conn: AgentdConnection, test: (s: ConnectionState) => boolean): Promise<void> {
  await until(() => test(conn.state), `connection state; now ${JSON.stringify(conn.state)}`);
}

/** The environment `agentd start` gives the daemon it starts: the rig's model. */
const rigEnv = (rig: AgentRig) => ({ ANTHROPIC_BASE_URL: rig.emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' });

/** Starts the daemon again (`agentd start`) and returns the session's log once its turn settled there. */
async function carriedOn(rig: AgentRig, sessionId: string): Promise<Event[]> {
  const { layout } = rig.daemon;
  assert.equal((await runAgentd(layout, ['start'], { env: rigEnv(rig) })).code, 0);
  const client = await connect({ layout, autostart: false, clientName: 'after' });
  try {
    const events = await settle(client, sessionId);
    assert.deepEqual(assertLogInvariants(events), []);
    return events;
  } finally {
    client.close();
  }
}

const readyLines = (rig: AgentRig) => readLog(rig.daemon.layout).split('\n').filter((l) => l.includes('"msg":"daemon ready"')).length;

/** A rig for one test: whatever the test did, the daemon is stopped (a restarted one too) and the rig disposed. */
async function withRig(body: (rig: AgentRig) => Promise<void>): Promise<void> {
  const rig = await startAgentRig();
  try {
    await body(rig);
  } finally {
    await runAgentd(rig.daemon.layout, ['stop']);
    await rig.dispose();
  }
}

describe('agentd stop with clients connected', () => {
  it('no follower, bridge, editor or MCP server starts the daemon again; each says so, and resumes after `agentd start`', async () => {
    const rig = await startAgentRig();
    const { layout } = rig.daemon;
    const admin = await rig.daemon.client();
    const cwd = workspace();
    const sessionId = await createSession(admin, { workspace: cwd, title: 'followed' });
    rig.emulator.script([reply.text('before the stop')]);
    await admin.request(SessionPrompt, { sessionId, content: 'first' });
    await settle(admin, sessionId);

    const follower = spawnAgentd(layout, ['log', sessionId, '--follow', '--json']);
    const term = spawnAgentd(layout, ['attach', sessionId]);
    const bridge = spawnAgentd(layout, ['stdio']);
    const editorPipe = new RawConnection(bridge.proc.stdout!, bridge.proc.stdin!, () => bridge.proc.kill('SIGKILL'));
    const g = gate();
    const vscode = new AgentdConnection({
      bridge: { command: process.execPath, args: [AGENTD_BIN, 'stdio'], env: { ...process.env, AGENTD_HOME: layout.home } },
      clientName: 'vscode-test',
      waitBeforeReconnect: (_attempt, signal) => g.wait(signal),
    });
    const seenInVscode: Event[] = [];
    const editor = startAcp(rig);
    const host = await startMcp(layout.home);
    try {
      await follower.until(/"type":"turn.completed"/);
      await term.until(/before the stop/);
      assert.equal((await editorPipe.request(1, 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'editor' } })).error, undefined);
      vscode.start();
      vscode.follow(sessionId, 0, { onEvents: (events) => seenInVscode.push(...events) });
      await untilState(vscode, (s) => s.kind === 'connected');
      await initialize(editor);
      await editor.agent.request(acp.methods.agent.session.load, { sessionId, cwd, mcpServers: [] });
      assert.ok(!(await host.client.callTool({ name: 'agentd_list_sessions', arguments: {} })).isError);

      const stop = await runAgentd(layout, ['stop']);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /daemon stopped/);
      assert.deepEqual(await rig.daemon.exited, { code: 0, signal: null });

      // Each says the daemon was stopped, and none starts it.
      await follower.until(/agentd: the daemon was stopped on purpose \(daemon\/stop from connection \d+ \(agentd-cli\)\); waiting for it to be started again/);
      await term.until(/the daemon was stopped on purpose/);
      assert.equal(await bridge.exited, 1, 'agentd stdio ends with the connection');
      assert.ok(editorPipe.messages.some((m) => m.method === 'daemon/stopping'), 'the editor behind agentd stdio was told');
      await untilState(vscode, (s) => s.kind === 'daemonStopped');
      g.open(); // one more reconnection attempt: it spawns `agentd stdio`, which must not start the daemon
      await until(() => g.state.waits >= 2, 'the VS Code connection to try again');
      assert.equal(vscode.state.kind, 'daemonStopped', JSON.stringify(vscode.state));
      const respawned = await runAgentd(layout, ['stdio']); // an editor that respawns its bridge
      assert.equal(respawned.code, 3);
      assert.match(respawned.stderr, /agentd stdio: the agentd daemon was stopped on purpose .*agentd start/);
      await assert.rejects(
        editor.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: 'text', text: 'are you there?' }] }),
        (error: Error) => /stopped on purpose/.test(error.message),
      );
      const listed = (await host.client.callTool({ name: 'agentd_list_sessions', arguments: {} })) as CallToolResult;
      assert.equal(listed.isError, true);
      assert.match(JSON.stringify(listed.content), /stopped on purpose/);
      term.type('hello while stopped');
      await term.until(/the daemon is stopped; nothing was sent/);
      assert.equal(existsSync(layout.socket), false, 'no daemon listens');
      const status = await runAgentd(layout, ['status']);
      assert.equal(status.code, 3);
      assert.match(status.stdout, /not running: the agentd daemon was stopped on purpose/);
      assert.equal(readyLines(rig), 1, 'no daemon was started after the stop');

      // An explicit command starts it; every follower carries on from where it was.
      const started = await runAgentd(layout, ['start'], { env: rigEnv(rig) });
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, /^started: agentd daemon pid \d+/);
      g.open();
      await untilState(vscode, (s) => s.kind === 'connected');
      const again = await connect({ layout, autostart: false, clientName: 'after' });
      try {
        rig.emulator.script([reply.text('after the start')]);
        await again.request(SessionPrompt, { sessionId, content: 'second' });
        const log = await settle(again, sessionId);
        await follower.until(/agentd: the daemon runs again; following on/);
        await follower.until(/after the start/);
        await term.until(/after the start/);
        await until(() => seenInVscode.length >= log.length, 'VS Code to follow on');
        assert.deepEqual(seenInVscode, log, 'VS Code saw every event once, across the stop');
        const printed = follower.stdout().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Event).seq);
        assert.deepEqual(printed, log.map((e) => e.seq), 'log --follow printed every event once');
      } finally {
        again.close();
      }
    } finally {
      await follower.close();
      await term.close();
      await bridge.close('SIGKILL');
      await vscode.dispose();
      await editor.close();
      await host.close();
      await runAgentd(layout, ['stop']);
      await rig.dispose();
    }
  });
});

describe('a daemon start that races agentd stop', () => {
  it('does not start when a client asked for it before the stop, and starts when asked after it', () =>
    withRig(async (rig) => {
      const { layout } = rig.daemon;
      // A client that found no daemon asked for one at `asked`; the daemon it raced with
      // served it and is then stopped on purpose; the late start must not outlive that.
      const asked = Date.now();
      assert.equal((await runAgentd(layout, ['stop'])).code, 0);
      assert.ok(existsSync(layout.stopMarker), 'agentd stop leaves its marker');
      const late = await runAgentd(layout, ['daemon'], { env: { AGENTD_AUTOSTART_AT: String(asked) } });
      assert.equal(late.code, 1);
      assert.match(late.stderr, /not starting: the daemon was stopped on purpose \(daemon\/stop from connection \d+ \(agentd-cli\)\) after a client asked to start it/);
      assert.equal(existsSync(layout.socket), false);
      // Asked for after the stop (an explicit command): it starts, and the marker goes.
      const started = await runAgentd(layout, ['start'], { env: rigEnv(rig) });
      assert.equal(started.code, 0, started.stderr);
      assert.equal(existsSync(layout.stopMarker), false, 'a daemon that starts removes the marker');
    }));
});

describe('agentd stop drains', () => {
  it('lets a tool call in flight finish and be recorded, starts nothing new, and the turn carries on after the start', () =>
    withRig(async (rig) => {
      const { layout } = rig.daemon;
      const admin = await rig.daemon.client();
      const cwd = workspace();
      const sessionId = await createSession(admin, { workspace: cwd });
      rig.emulator.script([
        reply.toolUse({ name: 'bash', input: { command: 'until [ -e go ]; do sleep 0.05; done; echo finished-while-stopping' } }),
        reply.text('carried on after the start'),
      ]);
      await admin.request(SessionPrompt, { sessionId, content: 'run the slow tool' });
      await waitForEvent(admin, sessionId, (e) => e.type === 'tool.started');
      const requestsBefore = rig.emulator.requests.length;
      const stopper = spawnAgentd(layout, ['stop', '--timeout', '2m']);
      await stopper.until(/stopping: waiting up to 120 s for 1 running turn to reach a durable point/);
      writeFileSync(join(cwd, 'go'), ''); // the tool finishes while the daemon stops
      assert.equal(await stopper.exited, 0, stopper.stderr());
      assert.equal(rig.emulator.requests.length, requestsBefore, 'no model call was made while stopping');

      const events = await carriedOn(rig, sessionId);
      const woke = events.findIndex((e) => e.type === 'harness.woke');
      assert.ok(woke > 0, 'the turn was woken by the next daemon');
      const beforeStop = events.slice(0, woke);
      const result = ofType(beforeStop, 'tool.result')[0];
      assert.ok(result, 'the tool result was recorded before the daemon went');
      assert.equal(result.data.isError, false);
      assert.match(JSON.stringify(result.data.content), /finished-while-stopping/);
      assert.ok(!beforeStop.slice(beforeStop.indexOf(result)).some((e) => e.type === 'model.requested'), 'no model call after the durable point');
      assert.ok(!beforeStop.some((e) => e.type.startsWith('turn.') && e.type !== 'turn.started'), 'the turn was paused, not ended');
      assert.deepEqual(ofType(events, 'tool.started').length, 1, 'the tool ran once');
      assert.equal(ofType(events, 'turn.completed').length, 1);
      assert.match(JSON.stringify(ofType(events, 'assistant.message').at(-1)!.data.content), /carried on after the start/);
    }));

  it('lets a model call in flight finish and be recorded without starting its tool calls', () =>
    withRig(async (rig) => {
      const { layout } = rig.daemon;
      const admin = await rig.daemon.client();
      const sessionId = await createSession(admin);
      let answer!: () => void;
      const answered = new Promise<void>((resolve) => (answer = resolve));
      try {
        rig.emulator.script([
          async () => (await answered, reply.toolUse({ name: 'bash', input: { command: 'echo ran after the start' } })),
          reply.text('done'),
        ]);
        const requestsBefore = rig.emulator.requests.length;
        await admin.request(SessionPrompt, { sessionId, content: 'think slowly' });
        await rig.emulator.waitForRequests(requestsBefore + 1);
        const stopper = spawnAgentd(layout, ['stop']);
        await stopper.until(/stopping: waiting up to 30 s for 1 running turn/);
        answer(); // the model answers while the daemon stops
        assert.equal(await stopper.exited, 0, stopper.stderr());

        const events = await carriedOn(rig, sessionId);
        const beforeStop = events.slice(0, events.findIndex((e) => e.type === 'harness.woke'));
        assert.equal(ofType(beforeStop, 'assistant.message').length, 1, 'the reply in flight was recorded');
        assert.equal(ofType(beforeStop, 'tool.started').length, 0, 'its tool call did not start while stopping');
        assert.equal(ofType(events, 'model.requested').filter((e) => e.data.attempt === 1).length, 2, 'the recorded reply was not asked for again');
        assert.match(JSON.stringify(ofType(events, 'tool.result')[0]!.data.content), /ran after the start/);
        assert.equal(ofType(events, 'turn.completed').length, 1);
      } finally {
        answer();
      }
    }));

  it('is bounded: a tool still running at --timeout is cut off and gets an interrupted result after the start', () =>
    withRig(async (rig) => {
      const { layout } = rig.daemon;
      const admin = await rig.daemon.client();
      const sessionId = await createSession(admin);
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'until [ -e never ]; do sleep 0.05; done' } }), reply.text('noted')]);
      await admin.request(SessionPrompt, { sessionId, content: 'run forever' });
      await waitForEvent(admin, sessionId, (e) => e.type === 'tool.started');
      const stop = await runAgentd(layout, ['stop', '--timeout', '300ms']);
      assert.equal(stop.code, 0, stop.stderr);
      const events = await carriedOn(rig, sessionId);
      const result = ofType(events, 'tool.result')[0]!;
      assert.equal(result.data.errorKind, 'interrupted');
      assert.ok(events.indexOf(result) > events.findIndex((e) => e.type === 'harness.woke'), 'recorded by the next daemon');
      assert.equal(ofType(events, 'turn.completed').length, 1);
    }));
});
