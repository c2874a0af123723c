// The file tools' own logic, in process: path confinement against real symlinks, and grep with
// ripgrep against the built-in fallback on the same tree.
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findExecutable } from '../sandbox/isolation/probe.js';
import { createLocalProvider } from '../sandbox/provider.js';
import type { Shell, ToolContext } from '../sandbox/tools/define.js';
import { globTool } from '../sandbox/tools/glob.js';
import { grepTool } from '../sandbox/tools/grep.js';
import { resolveInWorkspace } from '../sandbox/tools/paths.js';
import { globMatcher } from '../sandbox/tools/walk.js';
import { makePlayground, textOf, type Playground } from './support/sandbox-fixtures.js';

const noShell: Shell = { run: () => Promise.reject(new Error('no shell in this test')) };

describe('path confinement (real symlinks, no sandbox in the way)', () => {
  let pg: Playground;
  before(() => {
    pg = makePlayground();
    mkdirSync(path.join(pg.workspace, 'dir'));
    symlinkSync(pg.dataDir, path.join(pg.workspace, 'to-data'));
    symlinkSync(path.join(pg.workspace, 'dir'), path.join(pg.workspace, 'to-dir'));
    symlinkSync(path.join(pg.root, 'later', 'x'), path.join(pg.workspace, 'dangling-out'));
    symlinkSync(path.join(pg.workspace, 'later.txt'), path.join(pg.workspace, 'dangling-in'));
  });
  after(() => pg.cleanup());

  it('resolves paths inside the workspace, including new files and inner symlinks', () => {
    assert.equal(resolveInWorkspace(pg.workspace, 'a/b/new.txt'), path.join(pg.workspace, 'a/b/new.txt'));
    assert.equal(resolveInWorkspace(pg.workspace, 'to-dir/f.txt'), path.join(pg.workspace, 'dir/f.txt'));
    assert.equal(resolveInWorkspace(pg.workspace, `${pg.workspace}/dir/../dir`), path.join(pg.workspace, 'dir'));
    assert.equal(resolveInWorkspace(pg.workspace, 'dangling-in'), path.join(pg.workspace, 'later.txt'));
  });

  it('refuses .., absolute paths outside, and symlinks that lead out (existing or not)', () => {
    for (const bad of ['..', '../home', 'dir/../../x', '/etc/passwd', pg.markerFile, 'to-data/marker.txt', 'to-data/new.txt', 'to-data', 'dangling-out', 'dangling-out/deeper']) {
      assert.throws(() => resolveInWorkspace(pg.workspace, bad), /outside the workspace|access refused/, bad);
    }
    assert.throws(() => resolveInWorkspace(pg.workspace, ''), /empty/);
  });
});

describe('glob patterns', () => {
  it('match **, *, ?, braces and classes, dotfiles too', () => {
    assert.ok(globMatcher('**/*.ts')('a.ts'));
    assert.ok(globMatcher('**/*.ts')('x/y/a.ts'));
    assert.ok(!globMatcher('*.ts')('x/a.ts'));
    assert.ok(globMatcher('src/{a,b}?.[jt]s')('src/b1.ts'));
    assert.ok(!globMatcher('src/[!a]*.js')('src/a.js'));
    assert.ok(globMatcher('a.b+c')('a.b+c') && !globMatcher('a.b')('axb'));
    assert.ok(globMatcher('*.png')('.hidden.png') && globMatcher('**/*')('.github/ci.yml'));
  });

  it('match a glob without / against file names anywhere, with basename', () => {
    assert.ok(globMatcher('*.ts', { basename: true })('x/y/a.ts'));
    assert.ok(!globMatcher('x/*.ts', { basename: true })('y/x/a.ts'));
  });
});

describe('grep: ripgrep and the built-in fallback agree', () => {
  let pg: Playground;
  let workspace: string;
  const rg = findExecutable('rg');
  before(() => {
    pg = makePlayground();
    workspace = realpathSync(pg.workspace);
    mkdirSync(path.join(workspace, 'src/deep'), { recursive: true });
    mkdirSync(path.join(workspace, '.git'));
    writeFileSync(path.join(workspace, 'src/a.ts'), 'const alpha = 1;\nconst beta = 2;\n');
    writeFileSync(path.join(workspace, 'src/deep/b.ts'), 'alpha again\n');
    writeFileSync(path.join(workspace, 'src/deep/c.md'), '# alpha docs\n');
    writeFileSync(path.join(workspace, '.hidden.txt'), 'alpha hidden\n');
    writeFileSync(path.join(workspace, '.git/HEAD'), 'alpha in git\n');
    writeFileSync(path.join(workspace, 'bin.dat'), Buffer.from('alpha\0binary'));
    writeFileSync(path.join(workspace, 'empty.txt'), '');
  });
  after(() => pg.cleanup());

  const ctx = (ripgrep: string | null): ToolContext => ({ workspace, ripgrep, signal: new AbortController().signal, shell: noShell });
  const cases: { pattern: string; path?: string; glob?: string }[] = [
    { pattern: 'alpha' },
    { pattern: 'al+pha\\b', path: 'src' },
    { pattern: 'alpha', glob: '*.ts' },
    { pattern: 'alpha', glob: 'src/**/*.md' },
    { pattern: 'beta', path: 'src/a.ts' },
    { pattern: 'nothing-matches' },
  ];

  it('ripgrep is installed here, so both paths are exercised', () => assert.ok(rg));

  for (const input of cases) {
    it(`same output for ${JSON.stringify(input)}`, async () => {
      const withRg = await grepTool.handler(input, ctx(rg));
      const builtin = await grepTool.handler(input, ctx(null));
      assert.deepEqual(builtin, withRg);
    });
  }

  it('finds what it should: hidden files yes, .git and binary files no', async () => {
    const out = await grepTool.handler({ pattern: 'alpha' }, ctx(null));
    assert.deepEqual(out.content, [{ type: 'text', text: '.hidden.txt:1:alpha hidden\nsrc/a.ts:1:const alpha = 1;\nsrc/deep/b.ts:1:alpha again\nsrc/deep/c.md:1:# alpha docs' }]);
  });

  it('glob lists the same tree', async () => {
    const out = await globTool.handler({ pattern: '**/*' }, ctx(null));
    assert.deepEqual(out.content, [{ type: 'text', text: '.hidden.txt\nbin.dat\nempty.txt\nsrc/a.ts\nsrc/deep/b.ts\nsrc/deep/c.md' }]);
  });
});

describe('grep inside real sandboxes, with and without ripgrep on PATH', () => {
  it('gives the same answers from the built-in search when rg is not on PATH', async () => {
    const pg = makePlayground();
    mkdirSync(path.join(pg.workspace, 'src'));
    writeFileSync(path.join(pg.workspace, 'src/x.ts'), 'const wanted = 1;\nconst other = 2;\n');
    writeFileSync(path.join(pg.workspace, 'notes.md'), 'wanted: yes\n');
    const provider = createLocalProvider();
    const withRg = await provider.provision({ sessionId: 'rg', workspace: pg.workspace });
    const withoutRg = await provider.provision({ sessionId: 'nog', workspace: pg.workspace, env: { PATH: '/nonexistent' } });
    try {
      assert.match(textOf(await withoutRg.execute('bash', { command: 'command -v rg || echo no-rg' })), /no-rg/);
      for (const input of [{ pattern: 'wanted' }, { pattern: 'want(ed)?', glob: '*.ts' }, { pattern: 'nothing' }]) {
        const a = await withRg.execute('grep', input);
        const b = await withoutRg.execute('grep', input);
        assert.deepEqual(b.content, a.content, JSON.stringify(input));
      }
    } finally {
      await Promise.all([withRg.close(), withoutRg.close()]);
      pg.cleanup();
    }
  });
});
