/**
 * Package managers through the egress proxy, unconfigured, inside a real bwrap sandbox:
 * npm from the registry this machine reaches with the package-registries preset, and pip
 * from a PEP 503 simple index the test makes (a real wheel, served over HTTP on 127.0.0.2)
 * allowed by host: PyPI itself is not reachable here. What the policy did not allow stays
 * out of reach.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { SessionPrompt, type Event, type SessionCreateParams } from '../protocol/index.js';
import { createSession, ofType, settle, startAgentRig, workspace } from './support/agent.js';
import { startStaticUpstream, type RecordingUpstream } from './support/egress-upstreams.js';
import { suiteFixture } from './support/fixture.js';
import { tempDir } from './support/temp.js';

/** The package the index serves: a pure-Python wheel built here, so the test needs nothing outside the repo. */
const WHEEL = { project: 'agentd-probe', module: 'agentd_probe', version: '1.0.0' };

/** Builds the wheel with Python's own zipfile (pip needs python3 anyway) and lays out a simple index over it. */
function simpleIndex(): string {
  const root = tempDir('agentd-pypi-');
  const file = `${WHEEL.module}-${WHEEL.version}-py3-none-any.whl`;
  mkdirSync(join(root, 'files'));
  const build = String.raw`
import base64, hashlib, sys, zipfile
module, version, out = sys.argv[1:4]
info = f'{module}-{version}.dist-info'
files = {
    f'{module}/__init__.py': f"__version__ = '{version}'\n",
    f'{info}/METADATA': f'Metadata-Version: 2.1\nName: {module.replace("_", "-")}\nVersion: {version}\n',
    f'{info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: agentd-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
}
record = [f'{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode()},{len(c.encode())}' for p, c in files.items()]
files[f'{info}/RECORD'] = '\n'.join(record + [f'{info}/RECORD,,']) + '\n'
with zipfile.ZipFile(out, 'w') as z:
    for p, c in files.items():
        z.writestr(p, c)
`;
  const built = spawnSync('python3', ['-c', build, WHEEL.module, WHEEL.version, join(root, 'files', file)], { encoding: 'utf8' });
  assert.equal(built.status, 0, `python3 could not build the wheel: ${built.stderr}`);
  mkdirSync(join(root, 'simple', WHEEL.project), { recursive: true });
  writeFileSync(join(root, 'simple', 'index.html'), `<!DOCTYPE html><html><body><a href="${WHEEL.project}/">${WHEEL.project}</a></body></html>\n`);
  writeFileSync(join(root, 'simple', WHEEL.project, 'index.html'), `<!DOCTYPE html><html><body><a href="../../files/${file}">${file}</a></body></html>\n`);
  return root;
}
const resultText = (e: Event) => (e.data.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('');

describe('package managers through the egress proxy', () => {
  const rig = suiteFixture(() => startAgentRig());

  async function run(ws: string, network: SessionCreateParams['network'], command: string): Promise<{ out: string; events: Event[] }> {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client, { workspace: ws, network });
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command, timeout_ms: 300_000 } }), reply.text('done')]);
    await client.request(SessionPrompt, { sessionId, content: 'install' });
    const events = await settle(client, sessionId, 600_000);
    return { out: ofType(events, 'tool.result').map(resultText)[0]!, events };
  }

  it('npm install works with the package-registries preset, and not without it', async () => {
    const allowed = workspace();
    const { out, events } = await run(allowed, { default: 'deny', presets: ['package-registries'] }, 'npm install --no-audit --no-fund --cache /tmp/npm-cache is-number@7.0.0 2>&1 | tail -3');
    assert.ok(existsSync(join(allowed, 'node_modules/is-number/package.json')), out);
    assert.equal(JSON.parse(readFileSync(join(allowed, 'node_modules/is-number/package.json'), 'utf8')).version, '7.0.0');
    const hosts = new Set(ofType(events, 'network.decided').map((e) => `${e.data.host} ${e.data.decision} ${e.data.reason}`));
    assert.ok(hosts.has('registry.npmjs.org allow preset package-registries ("registry.npmjs.org")'), JSON.stringify([...hosts]));

    const denied = workspace();
    const refused = await run(denied, { default: 'deny' }, 'npm install --no-audit --no-fund --cache /tmp/npm-cache --fetch-retries 0 is-number@7.0.0 2>&1 | tail -3');
    assert.ok(!existsSync(join(denied, 'node_modules/is-number')), refused.out);
    assert.ok(ofType(refused.events, 'network.decided').some((e) => e.data.host === 'registry.npmjs.org' && e.data.decision === 'deny'));
  });

  it('pip install works from an index allowed by host', async () => {
    let index: RecordingUpstream | undefined;
    try {
      index = await startStaticUpstream(simpleIndex());
      const ws = workspace();
      const { out, events } = await run(
        ws,
        { default: 'deny', allow: [index.authority] },
        `pip install --no-cache-dir --disable-pip-version-check --target ./pylib --index-url ${index.url}/simple --trusted-host 127.0.0.2 ${WHEEL.project}==${WHEEL.version} 2>&1 | tail -2 && python3 -c "import sys; sys.path.insert(0, 'pylib'); import ${WHEEL.module}; print('${WHEEL.module}', ${WHEEL.module}.__version__)"`,
      );
      assert.match(out, new RegExp(`${WHEEL.module} ${WHEEL.version.replaceAll('.', '\\.')}`));
      assert.ok(index.seen.some((s) => s.path.endsWith('.whl')), 'the wheel came through the proxy');
      assert.ok(ofType(events, 'network.decided').every((e) => e.data.decision === 'allow'));
    } finally {
      await index?.close();
    }
  });
});
