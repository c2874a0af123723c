/** scripts/setup.mjs (run by `npm test`) and the README's two commands that CI runs. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './support/temp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SETUP = join(ROOT, 'scripts/setup.mjs');

/** A PATH dir holding only node (and apt-get when asked), so that every package looks missing. */
function barePath(withApt: boolean): string {
  const dir = tempDir('agentd-setup-');
  chmodSync(dir, 0o755);
  symlinkSync(process.execPath, join(dir, 'node'));
  if (withApt) symlinkSync('/usr/bin/apt-get', join(dir, 'apt-get'));
  return dir;
}

function setup(args: string[], options: { path: string; uid?: number; script?: string }) {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: options.path };
  delete env.AGENTD_TEST_PG;
  return spawnSync(process.execPath, [options.script ?? SETUP, ...args], { env, encoding: 'utf8', ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}) });
}

describe('scripts/setup', () => {
  it('finds everything the tests need on this machine', () => {
    const result = setup(['--check'], { path: process.env.PATH ?? '' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /^scripts\/setup: ok: bubblewrap, ripgrep, git, postgresql, iproute2, curl, python3-pip, openssl, strace, chromium present\n$/);
  });

  it('where it may not install, stops with one line naming the packages and the command', { skip: process.getuid?.() !== 0 && 'needs root to run as nobody' }, () => {
    const path = barePath(true);
    // nobody has no sudo: setup must not try apt-get, only say what to run. It runs a copy
    // of the script, as the checkout may sit where nobody cannot read (root's home).
    const script = join(path, 'setup.mjs');
    copyFileSync(SETUP, script);
    chmodSync(script, 0o644);
    const result = setup([], { path, uid: 65534, script });
    assert.equal(result.status, 1, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^scripts\/setup: missing bwrap, rg, git, strace \(packages: bubblewrap ripgrep git strace\); install with sudo apt-get install -y bubblewrap ripgrep git strace$/);
  });

  it('without apt-get, names the packages for any package manager', () => {
    const path = barePath(false);
    const result = setup(['--check'], { path });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^scripts\/setup: missing bwrap, rg, git, strace .*on Debian\/Ubuntu: apt-get install -y bubblewrap ripgrep git strace\)\n$/);
  });
});

describe('README commands', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const [demo, tests] = [...readme.matchAll(/```sh\n(.*)\n```/g)].map((m) => m[1]!);

  it('start the README: one line that runs the demo, one that runs the tests', () => {
    assert.ok(readme.startsWith(`# agentd\n\n\`\`\`sh\n${demo}\n\`\`\`\n\n\`\`\`sh\n${tests}\n\`\`\`\n`), readme.slice(0, 200));
    assert.match(demo!, /npx agentd demo$/);
    assert.match(tests!, /npm test$/);
  });

  it('CI runs the test command verbatim, and npm test runs scripts/setup first', () => {
    assert.ok(readFileSync(join(ROOT, '.ci/run'), 'utf8').split('\n').includes(tests!), '.ci/run runs the README test command');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.test!, /^node scripts\/setup\.mjs && /);
  });
});
