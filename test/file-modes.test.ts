/**
 * File modes do not depend on the umask: under `umask 000`, with a data dir that
 * already exists at 0755, everything the daemon keeps there is owner-only, and the
 * per-session proxy sockets are 0600. What tools create in the user's own workspace
 * still follows the user's umask.
 */
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dataLayout, SessionFork, SessionPrompt, VaultSet } from '../protocol/index.js';
import { API_KEY, createSession, ofType, settle, workspace } from './support/agent.js';
import { startDaemon } from './support/daemon.js';
import { tempDir } from './support/temp.js';
import { reply, startModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { startHttpUpstream } from './support/upstreams.js';

/** Every path under `dir` (not following symlinks) with its permission bits. */
function* modes(dir: string): Generator<[string, number]> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = lstatSync(path, { throwIfNoEntry: false });
    if (!info || info.isSymbolicLink()) continue;
    yield [path, info.mode & 0o777];
    if (info.isDirectory()) yield* modes(path);
  }
}

describe('file modes', () => {
  it('keeps the data dir and everything in it owner-only under umask 000 (tightening what was there), and proxy sockets 0600', async () => {
    const home = tempDir('agentd-umask-');
    chmodSync(home, 0o755);
    // A log an older daemon left world-readable.
    writeFileSync(join(home, 'daemon.log'), '', { mode: 0o644 });
    chmodSync(join(home, 'daemon.log'), 0o644);
    const layout = dataLayout(home);
    const token = `umask-token-${Math.random().toString(36).slice(2)}`;
    const [emulator, upstream] = await Promise.all([startModelEmulator({ apiKey: API_KEY }), startHttpUpstream(token)]);
    const daemon = await startDaemon({
      layout,
      wrap: 'umask 000',
      env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY },
    });
    const ws = workspace();
    try {
      const client = await daemon.client();
      await client.request(VaultSet, { name: 'API', value: token, binding: { kind: 'http', url: upstream.url } });
      const sessionId = await createSession(client, { workspace: ws, credentials: ['API'] });
      emulator.script([
        reply.toolUse({
          name: 'bash',
          input: { command: `node -e "fetch(process.env.AGENTD_PROXY + '/API/x').then(r => console.log(r.status))"; echo made > made-by-tool.txt` },
        }),
        reply.text('done'),
      ]);
      await client.request(SessionPrompt, { sessionId, content: 'use the proxy, write a file' });
      const events = await settle(client, sessionId);
      assert.match(JSON.stringify(ofType(events, 'tool.result')[0]?.data.content), /200/, 'the tool reached the proxy');
      await client.request(SessionFork, { sessionId, at: 2 });

      assert.equal(statSync(home).mode & 0o777, 0o700, 'the pre-existing 0755 data dir was tightened');
      const socket = join(layout.proxies, `${sessionId}.sock`);
      assert.ok(statSync(socket).isSocket(), 'the session proxy socket exists while its runner lives');
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      const all = [...modes(home)];
      assert.ok(all.some(([path]) => path.startsWith(layout.db)), 'LevelDB files were checked');
      assert.ok(all.some(([path]) => path === layout.vaultFile) && all.some(([path]) => path === layout.vaultKey), 'the vault was checked');
      assert.ok(all.some(([path]) => path.startsWith(layout.workspaces)), 'a forked workspace was checked');
      const open = all.filter(([, mode]) => (mode & 0o077) !== 0).map(([path, mode]) => `${path} ${mode.toString(8)}`);
      assert.deepEqual(open, []);
      // The daemon's own mask does not leak into the sandbox: the user asked for 000.
      assert.equal(statSync(join(ws, 'made-by-tool.txt')).mode & 0o777, 0o666);
    } finally {
      await daemon.dispose();
      await Promise.all([emulator.close(), upstream.close()]);
    }
  });
});
