// Escape attempts against each isolation level this machine offers, and the no-silent-downgrade rule.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalProvider, probeIsolation } from '../sandbox/provider.js';
import type { IsolationLevel, IsolationReport, Sandbox } from '../sandbox/types.js';
import { bash, makePlayground, textOf, type Playground } from './support/sandbox-fixtures.js';

const provider = createLocalProvider();
const report = await probeIsolation();

// A unique variable in the provider's own environment; no sandbox may see it.
const parentSecretName = `AGENTD_PARENT_SECRET_${randomBytes(4).toString('hex')}`;
const parentSecret = `parent-env-secret-${randomBytes(8).toString('hex')}`;
process.env[parentSecretName] = parentSecret;

describe('isolation probe', () => {
  it('reports bwrap working on this machine (CI installs bubblewrap)', () => {
    assert.equal(report.levels.bwrap.ok, true, report.levels.bwrap.detail);
    assert.equal(report.best, 'bwrap');
    assert.equal(report.levels.none.ok, true);
    assert.equal(report.nodePty.ok, true, report.nodePty.detail);
    assert.equal(report.ripgrep.ok, true, report.ripgrep.detail);
  });
});

describe('never silently weaker than requested', () => {
  const noBwrap: IsolationReport = {
    ...report,
    best: 'none',
    levels: { ...report.levels, bwrap: { ok: false, detail: 'bwrap not found on PATH' }, namespaces: { ok: false, detail: 'unshare fails' } },
  };
  const limited = createLocalProvider({ isolationReport: Promise.resolve(noBwrap) });

  it('fails to provision when the requested level is unavailable', async () => {
    const pg = makePlayground();
    try {
      await assert.rejects(limited.provision({ sessionId: 'x', workspace: pg.workspace, isolation: 'bwrap' }), /isolation "bwrap" was requested but is not available here: bwrap not found/);
      await assert.rejects(limited.provision({ sessionId: 'x', workspace: pg.workspace, isolation: 'namespaces' }), /"namespaces" was requested/);
    } finally {
      pg.cleanup();
    }
  });

  it('falls back to none only with a loud warning', async () => {
    const pg = makePlayground();
    const sb = await limited.provision({ sessionId: 'x', workspace: pg.workspace });
    try {
      assert.equal(sb.isolation, 'none');
      assert.match(sb.warnings.join('\n'), /WITHOUT ISOLATION/);
    } finally {
      await sb.close();
      pg.cleanup();
    }
  });

  it('rejects a workspace that is not an absolute directory', async () => {
    await assert.rejects(provider.provision({ sessionId: 'x', workspace: 'relative/dir' }), /absolute path/);
    await assert.rejects(provider.provision({ sessionId: 'x', workspace: '/nonexistent/agentd/ws' }), /not a directory/);
  });
});

const levels: IsolationLevel[] = (['bwrap', 'namespaces'] as const).filter((l) => report.levels[l].ok);

for (const level of levels) {
  describe(`escape attempts at isolation "${level}"`, () => {
    let pg: Playground;
    let sb: Sandbox;
    let server: Server;
    let port = 0;
    let connections = 0;
    before(async () => {
      pg = makePlayground();
      server = createServer((socket) => {
        connections++;
        socket.end('hello from outside\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
      sb = await provider.provision({ sessionId: `esc-${level}`, workspace: pg.workspace, isolation: level, env: { AGENTD_TEST_TAG: pg.tag } });
    });
    after(async () => {
      await sb.close();
      server.close();
      pg.cleanup();
    });

    it('runs at the requested level with no warning about isolation missing', () => {
      assert.equal(sb.isolation, level);
      if (level === 'bwrap') assert.deepEqual(sb.warnings, []);
    });

    it("cannot read the parent's environment", async () => {
      const r = await bash(sb, `env; echo "[$${parentSecretName}]"; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'`);
      assert.doesNotMatch(textOf(r), new RegExp(parentSecret));
      assert.match(textOf(r), /\[\]/);
      assert.match(textOf(r), new RegExp(`AGENTD_TEST_TAG=${pg.tag}`)); // explicit env does arrive
    });

    it('cannot connect to a TCP port open on 127.0.0.1 outside', async () => {
      const viaBash = await bash(sb, `(echo hi > /dev/tcp/127.0.0.1/${port}) 2>&1; echo "status=$?"`, 10_000);
      assert.match(textOf(viaBash), /status=1/);
      const viaNode = await bash(
        sb,
        `${process.execPath} -e "require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', (e) => { console.log(e.code); process.exit(7); })"; echo "status=$?"`,
        10_000,
      );
      assert.match(textOf(viaNode), /status=7/);
      assert.equal(connections, 0);
    });

    it('reaps orphaned processes instead of leaving zombies', async () => {
      const r = await bash(sb, '(sleep 0.1 &); (sleep 0.1 &); sleep 0.5; grep -l "^State:.Z" /proc/[0-9]*/status 2>/dev/null | wc -l', 10_000);
      assert.equal(textOf(r), '0\n[exit code: 0]');
    });

    // Both levels build the same tree: system dirs read-only, the rest of the host not there.
    it('cannot see the data dir, the home directory or other workspaces', async () => {
      const r = await bash(sb, `cat ${pg.markerFile}; ls ${pg.dataDir}; ls ${path.dirname(pg.workspace)}; ls -a $HOME /root 2>&1; ls /work 2>&1; echo end`);
      const out = textOf(r);
      assert.doesNotMatch(out, new RegExp(pg.marker));
      assert.match(out, /No such file or directory/);
      assert.doesNotMatch(out, /\bhome\b.*\bworkspace\b/);
      assert.match(out, /end\n\[exit code: 0\]$/);
    });

    it('cannot write outside the workspace', async () => {
      const outside = path.join(pg.root, `escape-${randomBytes(4).toString('hex')}`);
      const r = await bash(sb, `echo x > ${outside}; echo x > /usr/escape; echo x > ${pg.dataDir}/planted; echo x > /tmp/private-tmp-is-fine && echo tmp-ok`);
      assert.match(textOf(r), /tmp-ok/);
      assert.equal(existsSync(outside), false);
      assert.equal(existsSync('/usr/escape'), false);
      assert.equal(existsSync(path.join(pg.dataDir, 'planted')), false);
      assert.equal(existsSync('/tmp/private-tmp-is-fine'), false);
    });

    it('sees the workspace read-write at its real path, and system dirs read-only', async () => {
      const r = await bash(sb, 'echo inside > made-inside.txt; touch /usr/bin/x 2>&1; echo done');
      assert.match(textOf(r), /Read-only file system/);
      assert.equal(existsSync(path.join(pg.workspace, 'made-inside.txt')), true);
    });
  });
}

describe('extra binds (the later credential-proxy socket)', () => {
  it('exposes a read-only bind unwritable and a read-write bind writable, at the same path', async () => {
    const pg = makePlayground();
    const ro = path.join(pg.root, 'ro');
    const rw = path.join(pg.root, 'rw');
    mkdirSync(ro);
    mkdirSync(rw);
    writeFileSync(path.join(ro, 'given.txt'), 'given');
    const sb = await provider.provision({ sessionId: 'binds', workspace: pg.workspace, isolation: 'bwrap', binds: [{ path: ro, readOnly: true }, { path: rw, readOnly: false }] });
    try {
      const r = await bash(sb, `cat ${ro}/given.txt; echo; echo x > ${ro}/new.txt; echo made > ${rw}/made.txt && echo rw-ok`);
      assert.match(textOf(r), /^given\n[\s\S]*Read-only file system[\s\S]*rw-ok/);
      assert.equal(existsSync(path.join(ro, 'new.txt')), false);
      assert.equal(existsSync(path.join(rw, 'made.txt')), true);
    } finally {
      await sb.close();
      pg.cleanup();
    }
  });

  it('fails provisioning with a clear reason when a bind does not exist', async () => {
    const pg = makePlayground();
    try {
      await assert.rejects(
        provider.provision({ sessionId: 'binds', workspace: pg.workspace, isolation: 'bwrap', binds: [{ path: path.join(pg.root, 'absent'), readOnly: true }] }),
        /the sandbox host did not start: exited with code 1: bwrap: Can't find source path/,
      );
    } finally {
      pg.cleanup();
    }
  });
});
