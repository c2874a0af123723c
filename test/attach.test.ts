/** `agentd attach` as a user runs it: a real CLI process on a real daemon, typing lines on its stdin. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, type AgentdClient } from '../clients/lib/index.js';
import { dataLayout, SessionPrompt, type SessionCreateParams } from '../protocol/index.js';
import { API_KEY, createSession, ofType, settle, startAgentRig, waitForEvent, type AgentRig } from './support/agent.js';
import { runAgentd, spawnAgentd, type SpawnedAgentd } from './support/daemon.js';
import { lastUserText, reply } from '../clients/cli/demo/model-emulator.js';
import { withFixture } from './support/fixture.js';

function attach(home: string, args: string[]): SpawnedAgentd {
  return spawnAgentd(dataLayout(home), ['attach', ...args]);
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

interface AttachScene {
  rig: AgentRig;
  client: AgentdClient;
  sessionId: string;
  /** Starts `agentd attach` on the session. */
  startAttach(): SpawnedAgentd;
}

/** Runs `body` with a rig of its own and a session on it made with `params`; the attach it starts is closed after it. */
async function withSession(params: Partial<SessionCreateParams>, body: (scene: AttachScene) => Promise<void>): Promise<void> {
  await withFixture(startAgentRig(), async (rig) => {
    const client = await rig.daemon.client();
    const sessionId = await createSession(client, params);
    let term: SpawnedAgentd | undefined;
    try {
      await body({ rig, client, sessionId, startAttach: () => (term = attach(rig.daemon.layout.home, [sessionId])) });
    } finally {
      await term?.close();
    }
  });
}

describe('agentd attach', () => {
  it('shows the live session in a terminal, prompts it and answers its questions', async () => {
    await withSession({ title: 'from the terminal', permissions: { default: 'ask' } }, async ({ rig, client, sessionId, startAttach }) => {
      const term = startAttach();
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo from attach' } }), reply.text('attached and done')]);
      term.type('hello from the terminal');
      await term.until(/\? session s_[0-9a-z]+ "from the terminal": bash echo from attach wants to run/);
      term.type('y');
      await term.until(/attached and done/);
      assert.match((term.stdout() + term.stderr()), /you> hello from the terminal/);
      assert.match((term.stdout() + term.stderr()), /\(allow by agentd-attach \(controller\)#\d+\)/);
      const events = await settle(client, sessionId);
      assert.equal(ofType(events, 'turn.completed').length, 1);
      assert.equal(await term.close(), 0);
    });
  });

  it('steers the running turn with /steer: the turn’s next model call reads it', async () => {
    await withSession({}, async ({ rig, client, sessionId, startAttach }) => {
      const term = startAttach();
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      rig.emulator.script([async () => (await released, reply.text('a first draft')), reply.text('a draft about the sea')]);
      term.type('write a poem');
      await waitForEvent(client, sessionId, (e) => e.type === 'model.requested');
      term.type('/steer about the sea');
      await waitForEvent(client, sessionId, (e) => e.type === 'user.steer');
      release();
      await term.until(/a draft about the sea/);
      assert.match(term.stdout() + term.stderr(), /you> about the sea/);
      const events = await settle(client, sessionId);
      assert.equal(ofType(events, 'turn.completed').length, 1);
      assert.equal(lastUserText(rig.emulator.requests.at(-1)!.body), 'about the sea');
      assert.equal(await term.close(), 0);
    });
  });

  it('asks a question that was open before it attached once, and the first answer counts', async () => {
    await withSession({ permissions: { default: 'ask' } }, async ({ rig, client, sessionId, startAttach }) => {
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo asked once' } }), reply.text('ran it')]);
      await client.request(SessionPrompt, { sessionId, content: 'needs an answer' });
      await waitForEvent(client, sessionId, (e) => e.type === 'permission.requested');
      const term = startAttach();
      await term.until(/bash echo asked once wants to run/);
      // The first y typed is the answer: no second copy of the question swallows it.
      term.type('y');
      const events = await settle(client, sessionId);
      const resolved = ofType(events, 'permission.resolved');
      assert.equal(resolved.length, 1);
      assert.equal(resolved[0]!.data.decision, 'allow');
      assert.match(String(resolved[0]!.data.by), /^agentd-attach \(controller\)#/);
      await term.until(/ran it/);
      assert.equal(count((term.stdout() + term.stderr()), /wants to run/), 1, `asked once:\n${(term.stdout() + term.stderr())}`);
      assert.ok(!/you> y\b/.test((term.stdout() + term.stderr())), 'the answer was not sent as a prompt');
    });
  });

  it('asks once across a daemon stop and start, and the answer typed after it counts', async () => {
    const rig = await startAgentRig();
    const client = await rig.daemon.client();
    const sessionId = await createSession(client, { permissions: { default: 'ask' } });
    rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo across a restart' } }), reply.text('carried on')]);
    const term = attach(rig.daemon.layout.home, [sessionId]);
    try {
      term.type('go');
      await term.until(/bash echo across a restart wants to run/);
      const env = { ANTHROPIC_BASE_URL: rig.emulator.url, ANTHROPIC_API_KEY: API_KEY };
      assert.equal((await runAgentd(rig.daemon.layout, ['stop'])).code, 0);
      await term.until(/the daemon was stopped on purpose/);
      // A daemon this test starts (the rig's is gone); attach reconnects and is asked again.
      assert.equal((await runAgentd(rig.daemon.layout, ['start'], { env })).code, 0);
      const probe = await connect({ layout: rig.daemon.layout, autostart: false, clientName: 'probe' });
      try {
        await waitForEvent(probe, sessionId, (e) => e.type === 'harness.woke');
        term.type('a');
        await term.until(/carried on/);
        assert.equal(count((term.stdout() + term.stderr()), /wants to run/), 1, `asked once:\n${(term.stdout() + term.stderr())}`);
        const events = await settle(probe, sessionId);
        assert.deepEqual(ofType(events, 'permission.resolved').map((e) => e.data.decision), ['allow_always']);
      } finally {
        probe.close();
      }
    } finally {
      await term.close();
      await runAgentd(rig.daemon.layout, ['stop']);
      await rig.dispose();
    }
  });

  it('exits at once with an error for an unknown or malformed session id', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const unknown = await runAgentd(rig.daemon.layout, ['attach', 's_0000000000nosuchsess']);
      assert.equal(unknown.code, 1, unknown.stderr);
      assert.match(unknown.stderr, /unknown session s_0000000000nosuchsess \(SessionNotFound -33001\)/);
      const malformed = await runAgentd(rig.daemon.layout, ['attach', 'not-a-session']);
      assert.equal(malformed.code, 2, malformed.stderr);
      assert.match(malformed.stderr, /<sessionId>: a session id looks like s_.*not "not-a-session"/);
    });
  });
});
