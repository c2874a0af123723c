/**
 * The VS Code extension's connection core, against a real daemon through `agentd stdio`:
 * reconnect after the daemon is killed and restarted, and after the bridge dies, with
 * every followed session resubscribed from its last seq (no gap, no duplicate).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AgentdConnection, agentdNotFound, type ConnectionState } from '../clients/vscode/src/core/connection.js';
import { AgentdNotFoundError, openBridge, type BridgeCommand } from '../clients/vscode/src/core/bridge.js';
import { ChatModel } from '../clients/lib/chat-view.js';
import { treeChildren } from '../clients/vscode/src/core/sessions.js';
import { SessionCreate, SessionPrompt, type Event, type SessionInfo } from '../protocol/index.js';
import { allEvents, settle, startAgentRig, workspace, type AgentRig } from './support/agent.js';
import { AGENTD_BIN } from './support/daemon.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { until } from './support/until.js';
import { suiteFixture } from './support/fixture.js';

function bridgeFor(home: string): BridgeCommand {
  return { command: process.execPath, args: [AGENTD_BIN, 'stdio'], env: { ...process.env, AGENTD_HOME: home } };
}

/** A reconnect gate the test opens: the connection waits on it before every reconnect. */
function gate() {
  let open!: () => void;
  let waiting!: () => void;
  let opened = new Promise<void>((r) => (open = r));
  const reached = new Promise<void>((r) => (waiting = r));
  return {
    reached,
    open: () => open(),
    wait: async () => {
      waiting();
      await opened;
      opened = Promise.resolve();
    },
  };
}

function untilState(conn: AgentdConnection, test: (s: ConnectionState) => boolean): Promise<ConnectionState> {
  return until(() => test(conn.state) && conn.state, `connection state; now ${JSON.stringify(conn.state)}`);
}


/**
 * Follows a new session from seq 0 over a connection through `agentd stdio`; after the
 * first turn, `cut` breaks the connection, and while it waits to reconnect another client
 * runs a second turn. Once it is back, a third turn runs over it. Resolves, after the
 * follower has caught up, with what it saw and the session's log.
 */
async function followAcrossOutage(rig: AgentRig, cut: (conn: AgentdConnection) => Promise<void>) {
  const g = gate();
  const conn = new AgentdConnection({ bridge: bridgeFor(rig.daemon.layout.home), clientName: 'vscode-test', waitBeforeReconnect: () => g.wait() });
  conn.start();
  try {
    const { sessionId } = await conn.request(SessionCreate, { workspace: workspace(), permissions: { default: 'allow' } });
    const seen: Event[] = [];
    const model = new ChatModel(sessionId);
    conn.follow(sessionId, 0, {
      onEvents: (events) => {
        seen.push(...events);
        model.applyEvents(events);
      },
      onDelta: (d) => model.applyDelta(d),
    });
    rig.emulator.script([reply.text('first answer'), reply.text('second answer, while the editor was away'), reply.text('third answer')]);
    await conn.request(SessionPrompt, { sessionId, content: 'one' });
    await until(() => seen.some((e) => e.type === 'turn.completed'), 'the first turn in the follower');

    await cut(conn);
    await g.reached;
    // Events appended while the connection is down: it must catch up on them.
    const other = await rig.daemon.client();
    await other.request(SessionPrompt, { sessionId, content: 'two' });
    await settle(other, sessionId);
    g.open();
    await untilState(conn, (s) => s.kind === 'connected');
    await conn.request(SessionPrompt, { sessionId, content: 'three' });
    const log = await settle(other, sessionId);
    await until(() => seen.length >= log.length, 'the follower to reach the head');
    return { sessionId, seen, log, model, other, bridgePid: conn.bridgePid };
  } finally {
    await conn.dispose();
  }
}

describe('vscode core: connection through agentd stdio', () => {
  const rig = suiteFixture(() => startAgentRig());

  it('survives a daemon kill and restart: resubscribes from the last seq, no gap, no duplicate', async () => {
    const { seen, log, model } = await followAcrossOutage(rig(), async (conn) => {
      await rig().crashAndRestart();
      await untilState(conn, (s) => s.kind !== 'connected');
    });
    assert.deepEqual(seen.map((e) => e.seq), log.map((e) => e.seq), 'every seq once, in order');
    assert.deepEqual(seen, log, 'the follower saw exactly the log');
    const view = model.view();
    assert.deepEqual(view.items.filter((i) => i.kind === 'user').map((i) => (i as { text: string }).text), ['one', 'two', 'three']);
    assert.deepEqual(
      view.items.filter((i) => i.kind === 'assistant').map((i) => (i as { text: string }).text),
      ['first answer', 'second answer, while the editor was away', 'third answer'],
    );
    assert.equal(view.status, 'idle');
  });

  it('survives the bridge process dying: a new bridge, the same daemon, no gap, no duplicate', async () => {
    let killed = 0;
    const { seen, log, bridgePid, other, sessionId } = await followAcrossOutage(rig(), async (conn) => {
      killed = conn.bridgePid!;
      process.kill(killed, 'SIGKILL');
    });
    assert.notEqual(bridgePid, killed, 'a new bridge process');
    assert.deepEqual(seen, log);
    assert.deepEqual(await allEvents(other, sessionId), log);
  });

  it('says how to fix a missing agentd executable', async () => {
    await assert.rejects(
      openBridge({ command: '/nonexistent/bin/agentd', args: ['stdio'] }, { clientName: 'vscode-test' }),
      (error: Error) => error instanceof AgentdNotFoundError && /agentd\.path/.test(error.message) && /npm ci && npm install -g \./.test(error.message),
    );
    const conn = new AgentdConnection({ bridge: { command: '/nonexistent/bin/agentd', args: ['stdio'] }, clientName: 'vscode-test' });
    conn.start();
    try {
      const state = await untilState(conn, (s) => s.kind === 'failed');
      assert.ok(agentdNotFound(state));
      await assert.rejects(conn.request(SessionCreate, { workspace: workspace() }, 300), /agentd\.path/);
    } finally {
      await conn.dispose();
    }
  });
});

describe('vscode core: the sessions tree', () => {
  it('puts sub-agents under the session that started them, keeping order; a sub-agent whose parent is not listed stays at the top', () => {
    const info = (sessionId: string, parent?: string): SessionInfo => ({
      sessionId,
      workspace: '/w',
      status: 'idle',
      headSeq: 1,
      createdAt: 0,
      updatedAt: 0,
      usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
      ...(parent ? { parent: { sessionId: parent, toolUseId: `toolu_${sessionId}` } } : {}),
    });
    const sessions = [info('s_child2aaaaaa', 's_parentaaaaa'), info('s_parentaaaaa'), info('s_child1aaaaaa', 's_parentaaaaa'), info('s_orphanaaaaa', 's_goneaaaaaaa')];
    assert.deepEqual(treeChildren(sessions).map((s) => s.sessionId), ['s_parentaaaaa', 's_orphanaaaaa']);
    assert.deepEqual(treeChildren(sessions, 's_parentaaaaa').map((s) => s.sessionId), ['s_child2aaaaaa', 's_child1aaaaaa']);
    assert.deepEqual(treeChildren(sessions, 's_child1aaaaaa'), []);
  });
});
