/** Credentials end to end: remote MCP servers called by the daemon, the proxy, git through the proxy. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionPrompt, VaultSet } from '../protocol/index.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import type { AgentdClient } from '../clients/lib/index.js';
import { createSession, ofType, settle, startAgentRig, type AgentRig } from './support/agent.js';
import { startGitUpstream, startHttpUpstream, startMcpUpstream, type Upstream } from './support/upstreams.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suiteFixture } from './support/fixture.js';

const node = (code: string) => `node -e ${JSON.stringify(code)}`;
const fetchText = (url: string) => node(`fetch(${url}).then(async r => console.log(r.status, await r.text())).catch(e => console.log('FAILED', e.cause?.code ?? e.message))`);
const resultText = (e: { data: Record<string, unknown> }) => (e.data.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('');

/**
 * Runs `body` with an upstream that takes only a fresh random token, stored in the
 * vault as `name` and bound to the upstream's URL for `kind`; the upstream is closed after.
 */
async function withBoundToken<U extends Upstream>(
  rig: AgentRig,
  credential: { name: string; kind: 'http' | 'git' | 'mcp' },
  start: (token: string) => Promise<U>,
  body: (scene: { upstream: U; token: string; client: AgentdClient }) => Promise<void>,
): Promise<void> {
  const token = `${credential.kind}-token-${Math.random().toString(36).slice(2)}`;
  const upstream = await start(token);
  try {
    const client = await rig.daemon.client();
    await client.request(VaultSet, { name: credential.name, value: token, binding: { kind: credential.kind, url: upstream.url } });
    await body({ upstream, token, client });
  } finally {
    await upstream.close();
  }
}

describe('remote MCP servers', () => {
  const rig = suiteFixture(() => startAgentRig());

  it('are called by the daemon with the vault token, outside any sandbox, namespaced for the model', async () => {
    await withBoundToken(rig(), { name: 'NOTES_TOKEN', kind: 'mcp' }, startMcpUpstream, async ({ upstream, token, client }) => {
      const sessionId = await createSession(client, { mcpServers: [{ name: 'notes', type: 'http', url: upstream.url, credential: 'NOTES_TOKEN' }] });
      rig().emulator.script([reply.toolUse({ name: 'mcp__notes__lookup', input: { word: 'agentd' } }), reply.text('The notes have 3 entries.')]);
      await client.request(SessionPrompt, { sessionId, content: 'look it up' });
      const events = await settle(client, sessionId);
      const offered = (rig().emulator.requests.at(-1)!.body as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
      assert.ok(offered.includes('mcp__notes__lookup'));
      const started = ofType(events, 'tool.started')[0]!;
      assert.equal(started.data.where, 'daemon');
      const result = ofType(events, 'tool.result')[0]!;
      assert.equal(result.data.isError, false);
      assert.match(JSON.stringify(result.data.content), /notes on agentd: found 3 entries/);
      assert.deepEqual(upstream.calls, ['agentd']);
      assert.ok(upstream.seen.every((h) => h === `Bearer ${token}`), 'every request carried the token');
      assert.equal(ofType(events, 'sandbox.provisioned').length, 0, 'no sandbox was involved');
    });
  });
});

describe('credential proxy', () => {
  // Its sessions ask for the namespaces level too, which the default floor (bwrap) refuses.
  const rig = suiteFixture(() => startAgentRig({}, ['--isolation-floor', 'namespaces']));

  // Every isolation level that keeps the sandbox off the network reaches the proxy the same way.
  for (const isolation of ['bwrap', 'namespaces'] as const) {
    it(`adds the token on the way out, redacts it on the way back, and refuses everything else (isolation ${isolation})`, async () => {
      await withBoundToken(rig(), { name: 'API_TOKEN', kind: 'http' }, startHttpUpstream, async ({ upstream, token, client }) => {
        await client.request(VaultSet, { name: 'OTHER_TOKEN', value: `other-${token}`, binding: { kind: 'http', url: upstream.url } });
        const sessionId = await createSession(client, { credentials: ['API_TOKEN'], sandbox: { isolation } });
        rig().emulator.script([
          reply.toolUse({ name: 'bash', input: { command: fetchText('process.env.AGENTD_PROXY + "/API_TOKEN/things?x=1"') } }),
          reply.toolUse({ name: 'bash', input: { command: fetchText('process.env.AGENTD_PROXY + "/API_TOKEN/echo-secret"') } }),
          reply.toolUse({ name: 'bash', input: { command: fetchText('process.env.AGENTD_PROXY + "/OTHER_TOKEN/things"') } }),
          reply.toolUse({ name: 'bash', input: { command: fetchText(JSON.stringify(upstream.url + '/direct')) } }),
          reply.text('checked'),
        ]);
        await client.request(SessionPrompt, { sessionId, content: 'call the API' });
        const events = await settle(client, sessionId);
        const results = ofType(events, 'tool.result').map(resultText);
        assert.match(results[0]!, /200 .*"ok":true.*"path":"\/things\?x=1"/);
        assert.match(results[1]!, /\[REDACTED:API_TOKEN\]/);
        assert.match(results[2]!, /403 agentd proxy: "OTHER_TOKEN" is not a credential this session may use; allowed: API_TOKEN \(http /);
        assert.match(results[3]!, /FAILED/, 'no direct network from the sandbox');
        assert.doesNotMatch(JSON.stringify(events), new RegExp(token));
        assert.deepEqual(upstream.seen, [`Bearer ${token}`, `Bearer ${token}`], 'the upstream got the token, only for the bound name');
        assert.equal(ofType(events, 'sandbox.provisioned')[0]?.data.isolation, isolation);
      });
    });
  }

  it('clones a repo through the proxy, and git fetch and push work from the sandbox without a token in .git/config', async () => {
    await withBoundToken(rig(), { name: 'GIT_TOKEN', kind: 'git' }, (token) => startGitUpstream(token), async ({ upstream, token, client }) => {
      const sessionId = await createSession(client, { credentials: ['GIT_TOKEN'], repos: [{ url: upstream.url, credential: 'GIT_TOKEN', path: 'repo' }] });
      rig().emulator.script([
        reply.toolUse({
          name: 'bash',
          input: {
            command:
              'cat repo/README.md && cd repo && git remote get-url origin && echo "agent was here" >> README.md && ' +
              'git -c user.email=agent@example.com -c user.name=agent commit -qam "agent change" && git push -q origin HEAD:main && git fetch -q origin && git log --oneline -1 origin/main',
          },
        }),
        reply.text('pushed'),
      ]);
      await client.request(SessionPrompt, { sessionId, content: 'change the repo' });
      const events = await settle(client, sessionId);
      const provisioned = ofType(events, 'sandbox.provisioned')[0]!;
      assert.deepEqual(provisioned.data.repos, [{ path: 'repo', cloned: true }]);
      const out = resultText(ofType(events, 'tool.result')[0]!);
      assert.match(out, /hello from upstream/);
      assert.match(out, /http:\/\/127\.0\.0\.1:7890\/GIT_TOKEN/);
      assert.match(out, /agent change/);
      assert.match(out, /exit code: 0/);
      assert.match(upstream.log(), /agent change/, 'the push reached the upstream');
      const workspace = String(ofType(events, 'session.created')[0]!.data.workspace);
      const gitConfig = readFileSync(join(workspace, 'repo', '.git', 'config'), 'utf8');
      assert.doesNotMatch(gitConfig, new RegExp(token));
      assert.doesNotMatch(gitConfig, new RegExp(Buffer.from(`x-access-token:${token}`).toString('base64')));
    });
  });
});
