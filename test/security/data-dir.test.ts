/**
 * Attacks on the daemon's keys from inside a sandbox, in the default layout: the user's home
 * dir is the workspace and the data dir is <home>/.agentd. Each runs as the model's bash call
 * at every isolation level this machine has, with the daemon as root and as an ordinary user.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../../protocol/index.js';
import { securityMatrix, startSecurityRig, type SecurityRig } from './support/rig.js';

const matrix = await securityMatrix();

for (const { principal, level, pool, where } of matrix) {
  describe(`the data dir stays out of reach (${where})`, () => {
    const daemonSecret = `daemon-env-secret-${randomBytes(8).toString('hex')}`;
    let rig: SecurityRig;
    let sessionId: string;
    let keyHex: string;
    let loopback: Server;
    let loopbackPort = 0;
    let loopbackConnections = 0;

    before(async () => {
      rig = await startSecurityRig(principal, level, { pool, env: { AGENTD_TEST_DAEMON_SECRET: daemonSecret } });
      // A vault with an entry, so vault.key and vault.json exist, and a credential proxy socket.
      assert.equal((await rig.rpc('vault/set', { name: 'API', value: `vault-value-${randomBytes(6).toString('hex')}`, binding: { kind: 'http', url: 'http://127.0.0.1:9/' } })).error, undefined);
      keyHex = readFileSync(rig.layout.vaultKey).toString('hex');
      sessionId = await rig.session({ credentials: ['API'] });
      loopback = createServer((socket) => {
        loopbackConnections++;
        socket.end('hello from the host\n');
      });
      await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve));
      loopbackPort = (loopback.address() as { port: number }).port;
    });
    after(async () => {
      loopback.close();
      await rig.dispose();
    });

    it('cannot list or read the data dir, the vault, its key or the daemon log', async () => {
      const r = await rig.bash(
        sessionId,
        'echo "listing:[$(ls -A .agentd)]"; ls .agentd/proxy; od -An -tx1 -v .agentd/vault.key; cat .agentd/vault.json .agentd/daemon.log; ' +
          'echo "found:[$(find / -xdev \\( -name vault.key -o -name daemon.sock -o -name vault.json -o -name daemon.log \\) 2>/dev/null)]"',
      );
      assert.ok(readdirSync(rig.layout.home).includes('vault.key'), 'the vault key does exist outside');
      assert.match(r.text, /^listing:\[\]\n/);
      assert.match(r.text, /found:\[\]\n\[exit code: 0\]$/);
      assert.ok(!r.text.replace(/\s/g, '').includes(keyHex), 'the key bytes were not read');
      assert.doesNotMatch(r.text, /"binding"|daemon ready/, 'neither the vault nor the daemon log was read');
    });

    it('cannot connect to the daemon socket, so cannot ask it for a weaker session', async () => {
      const script = `const s = require('net').connect(${JSON.stringify(rig.layout.socket)}); s.on('connect', () => { s.write('Content-Length: 2\\r\\n\\r\\n{}'); console.log('CONNECTED'); process.exit(0); }); s.on('error', (e) => { console.log('refused', e.code); process.exit(3); });`;
      const r = await rig.bash(sessionId, `node -e ${JSON.stringify(script)}; echo status=$?`);
      assert.doesNotMatch(r.text, /CONNECTED/);
      assert.match(r.text, /refused ENOENT\nstatus=3/);
    });

    it('the floor refuses a weaker session asked for over the socket', async () => {
      const weaker = level === 'bwrap' ? ['namespaces', 'none'] : ['none'];
      for (const isolation of weaker) {
        const reply = await rig.rpc('session/create', { workspace: rig.home, sandbox: { isolation } });
        assert.equal(reply.error?.code, ErrorCode.IsolationBelowFloor, JSON.stringify(reply));
      }
    });

    it("cannot read the daemon's environment through /proc", async () => {
      const pid = rig.daemon.proc.pid!;
      const r = await rig.bash(sessionId, `cat /proc/${pid}/environ; ls /proc/${pid}; for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done 2>/dev/null | grep -c AGENTD_TEST_DAEMON_SECRET; echo end`);
      assert.ok(readFileSync(`/proc/${pid}/environ`, 'latin1').includes(daemonSecret), 'the secret is in the daemon environment');
      assert.doesNotMatch(r.text, new RegExp(daemonSecret));
      assert.doesNotMatch(r.text, /sk-containment-test/);
      assert.match(r.text, /No such file or directory/);
      assert.match(r.text, /\n0\nend\n/);
    });

    it("cannot reach the host's loopback (a TCP server on 127.0.0.1 outside)", async () => {
      const script = `require('net').connect(${loopbackPort}, '127.0.0.1').on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(7); })`;
      const r = await rig.bash(sessionId, `node -e ${JSON.stringify(script)}; echo status=$?; (echo hi > /dev/tcp/127.0.0.1/${loopbackPort}) 2>&1; echo bash=$?`);
      assert.match(r.text, /ECONNREFUSED\nstatus=7/);
      assert.match(r.text, /bash=1/);
      assert.equal(loopbackConnections, 0);
    });

    it('a fork, whose workspace lives in the data dir, sees its own files and nothing else of the data dir', async () => {
      const source = await rig.session({ workspace: rig.dir('forked-from') });
      await rig.bash(source, 'echo mine > mine.txt');
      const forked = await rig.fork(source);
      assert.equal(forked.error, undefined, JSON.stringify(forked.error));
      const fork = String(forked.result!.sessionId);
      const workspace = String(((await rig.rpc('session/get', { sessionId: fork })).result as { workspace: string }).workspace);
      assert.ok(workspace.startsWith(join(rig.layout.home, 'workspaces')), workspace);
      const r = await rig.bash(fork, 'cat mine.txt; echo "forks:[$(ls -A ..)]"; echo "data dir:[$(ls -A ../..)]"; od -An -tx1 -v ../../vault.key');
      assert.match(r.text, new RegExp(`^mine\\nforks:\\[${fork}\\]\\ndata dir:\\[workspaces\\]\\n`));
      assert.ok(!r.text.replace(/\s/g, '').includes(keyHex));
      assert.match(r.text, /No such file or directory/);
    });

    it('refuses a workspace that is the data dir, inside it, / or a system directory', async () => {
      for (const workspace of [rig.layout.home, join(rig.layout.home, 'proxy'), '/', '/etc', '/usr/bin', '/proc', '/tmp']) {
        if (!existsSync(workspace)) continue;
        const reply = await rig.rpc('session/create', { workspace });
        assert.equal(reply.error?.code, ErrorCode.WorkspaceForbidden, `${workspace}: ${JSON.stringify(reply)}`);
      }
    });
  });
}
