/**
 * The isolation floor: a session never gets weaker isolation than the daemon allows, whoever
 * asks (a client, a session made under a looser daemon), and only an explicit option of the
 * daemon lowers it. And `agentd doctor` says how sandboxes are held.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { AgentdError, ErrorCode, SessionCreate, SessionPrompt } from '../../protocol/index.js';
import { API_KEY, createSession, ofType, settle, startAgentRig, workspace } from '../support/agent.js';
import { runAgentd, startDaemon, tempHome } from '../support/daemon.js';
import { reply } from '../../clients/cli/demo/model-emulator.js';
import { withFixture } from '../support/fixture.js';

const refusal = async (promise: Promise<unknown>): Promise<number | undefined> => {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as AgentdError).code;
  }
};

describe('the isolation floor', () => {
  it('by default (bwrap) refuses sessions that ask for namespaces or none', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const client = await rig.daemon.client();
      for (const isolation of ['namespaces', 'none'] as const) {
        assert.equal(await refusal(client.request(SessionCreate, { workspace: workspace(), sandbox: { isolation } })), ErrorCode.IsolationBelowFloor);
      }
      await createSession(client, { sandbox: { isolation: 'bwrap' } });
    });
  });

  it('is lowered only by an explicit option: --isolation-floor, config.json or AGENTD_ISOLATION_FLOOR', async () => {
    await withFixture(startAgentRig({}, ['--isolation-floor', 'none']), async (viaOption) => {
      const client = await viaOption.daemon.client();
      const sessionId = await createSession(client, { sandbox: { isolation: 'none' } });
      viaOption.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo unisolated' } }), reply.text('done')]);
      await client.request(SessionPrompt, { sessionId, content: 'go' });
      const provisioned = ofType(await settle(client, sessionId), 'sandbox.provisioned')[0]!;
      assert.equal(provisioned.data.isolation, 'none');
      assert.match(JSON.stringify(provisioned.data.warnings), /WITHOUT ISOLATION/);
    });
    await withFixture(startAgentRig({ AGENTD_ISOLATION_FLOOR: 'namespaces' }), async (viaEnv) => {
      const client = await viaEnv.daemon.client();
      await createSession(client, { sandbox: { isolation: 'namespaces' } });
      assert.equal(await refusal(client.request(SessionCreate, { workspace: workspace(), sandbox: { isolation: 'none' } })), ErrorCode.IsolationBelowFloor);
    });
  });

  it('reads config.json, and refuses to start on a bad one, naming the file and the field', async () => {
    const layout = tempHome();
    writeFileSync(layout.config, JSON.stringify({ isolationFloor: 'nothing', sandbox: { limits: { pids: 5 } } }));
    const bad = await runAgentd(layout, ['daemon']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /config\.json: isolationFloor: .*; sandbox\.limits\.pids: /);
    rmSync(layout.config);
    const usage = await runAgentd(layout, ['daemon', '--isolation-floor', 'weak']);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /--isolation-floor: must be bwrap, namespaces or none, got "weak"/);
    rmSync(layout.home, { recursive: true, force: true });
  });

  it('holds for a session made under a looser daemon: a stricter one gives it no sandbox', async () => {
    await withFixture(startAgentRig({}, ['--isolation-floor', 'none']), async (loose) => {
      const sessionId = await createSession(await loose.daemon.client(), { sandbox: { isolation: 'none' } });
      await loose.daemon.kill('SIGTERM');
      // The same data dir, now under the default floor.
      const strict = await startDaemon({ layout: loose.daemon.layout, env: { ANTHROPIC_BASE_URL: loose.emulator.url, ANTHROPIC_API_KEY: API_KEY } });
      try {
        const client = await strict.client();
        loose.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo should-not-run' } }), reply.text('done')]);
        await client.request(SessionPrompt, { sessionId, content: 'go' });
        const result = ofType(await settle(client, sessionId), 'tool.result')[0]!;
        assert.equal(result.data.errorKind, 'sandbox_lost');
        assert.match(JSON.stringify(result.data.content), /isolation \\"none\\" is weaker than the floor \\"bwrap\\"/);
      } finally {
        await strict.kill('SIGKILL');
      }
    });
  });
});

describe('agentd doctor on containment', () => {
  it('reports the uid inside, capabilities, seccomp, limits, masked paths and the floor', async () => {
    const layout = tempHome();
    const result = await runAgentd(layout, ['doctor', '--json']);
    const report = JSON.parse(result.stdout) as {
      containment: { floor: string; levels: Record<string, { ok: boolean; uid: string; capabilities: string; seccomp: string; masked: string }>; limits: { pids: { mechanism: string }; memory: { mechanism: string } } };
      findings: Array<{ name: string; ok: boolean; detail: string }>;
    };
    assert.equal(report.containment.floor, 'bwrap');
    const bwrap = report.containment.levels.bwrap!;
    assert.equal(bwrap.ok, true, JSON.stringify(bwrap));
    assert.match(bwrap.uid, /^uid [1-9]\d* inside \(uid \d+ outside\)$/);
    assert.match(bwrap.capabilities, /^none \(effective, permitted, bounding, ambient, inheritable all empty\), no_new_privs set$/);
    assert.match(bwrap.seccomp, /^seccomp filter: \d+ calls refused \(mount, .*ptrace.*keyctl/);
    assert.match(bwrap.masked, new RegExp(`${layout.home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} hidden`));
    assert.notEqual(report.containment.limits.pids.mechanism, 'none');
    const names = report.findings.map((f) => f.name);
    for (const name of ['isolation floor', 'bwrap: uid', 'bwrap: capabilities', 'bwrap: seccomp', 'bwrap: masked', 'limits: processes', 'limits: memory']) assert.ok(names.includes(name), name);
    const human = await runAgentd(layout, ['doctor']);
    assert.match(human.stdout, /ok\s+bwrap: capabilities\s+none/);
    rmSync(layout.home, { recursive: true, force: true });
  });
});
