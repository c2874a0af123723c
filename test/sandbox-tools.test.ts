// The built-in tools, through a real sandbox at the strongest isolation this machine offers.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalProvider } from '../sandbox/provider.js';
import type { Sandbox } from '../sandbox/types.js';
import { bash, makePlayground, textOf, type Playground } from './support/sandbox-fixtures.js';

const provider = createLocalProvider();

describe('sandbox built-in tools', () => {
  let pg: Playground;
  let sb: Sandbox;
  before(async () => {
    pg = makePlayground();
    sb = await provider.provision({ sessionId: 'tools', workspace: pg.workspace, env: { AGENTD_TEST_TAG: pg.tag } });
  });
  after(async () => {
    await sb.close();
    pg.cleanup();
  });

  it('lists the static catalogue, the same as the host serves', async () => {
    const served = await sb.tools();
    assert.deepEqual(served, [...provider.builtinTools]);
    const names = served.map((t) => t.name);
    assert.deepEqual(names, ['bash', 'read_file', 'write_file', 'edit_file', 'glob', 'grep']);
    const bashTool = provider.builtinTools.find((t) => t.name === 'bash')!;
    assert.deepEqual((bashTool.inputSchema as { required: string[] }).required, ['command']);
  });

  describe('bash', () => {
    it('keeps cwd and exported variables between calls', async () => {
      await bash(sb, 'mkdir -p sub && cd sub && export GREETING=hello');
      const r = await bash(sb, 'pwd; echo "$GREETING"');
      assert.equal(r.isError, false);
      assert.equal(textOf(r), `${pg.workspace}/sub\nhello\n[exit code: 0]`);
      await bash(sb, `cd ${pg.workspace}`);
    });

    it('reports a non-zero exit as a normal result with the code', async () => {
      const r = await bash(sb, 'echo out; echo err >&2; false');
      assert.equal(r.isError, false);
      assert.equal(r.errorKind, undefined);
      assert.match(textOf(r), /out\nerr\n\[exit code: 1\]$/);
    });

    it('keeps output without a trailing newline and multi-line scripts with heredocs', async () => {
      assert.equal(textOf(await bash(sb, 'printf abc')), 'abc\n[exit code: 0]');
      const r = await bash(sb, "cat <<'EOF'\nline one\n  line two\nEOF\necho done");
      assert.equal(textOf(r), 'line one\n  line two\ndone\n[exit code: 0]');
    });

    it('gives stdin-reading commands end of file instead of hanging', async () => {
      const r = await bash(sb, 'cat; read -r x; echo "read=[$x]"', 10_000);
      assert.equal(textOf(r), 'read=[]\n[exit code: 0]');
    });

    it('caps huge output, keeping head and tail with a notice', async () => {
      const r = await bash(sb, 'seq 1 1000000');
      const out = textOf(r);
      assert.ok(out.length < 31_000, `output is ${out.length} chars`);
      assert.match(out, /^1\n2\n3\n/);
      assert.match(out, /output truncated: \d+ characters omitted/);
      assert.match(out, /999999\n1000000\n\[exit code: 0\]$/);
    });

    it('passes non-UTF-8 output through without breaking the framing', async () => {
      const r = await bash(sb, "printf 'caf\\xe9 \\xff\\xfe end\\n'; echo next");
      assert.match(textOf(r), /^caf.*end\nnext\n\[exit code: 0\]$/);
    });

    it('times out a never-ending command, kills its whole process group, and the shell survives', async () => {
      await bash(sb, 'cd sub && export KEPT=yes');
      const r = await bash(sb, 'sleep 1000 & echo $! > bg.pid; while :; do :; done', 500);
      assert.equal(r.isError, true);
      assert.equal(r.errorKind, 'timeout');
      assert.match(textOf(r), /timed out after 500 ms/);
      const after = await bash(sb, 'pwd; echo $KEPT; kill -0 $(cat bg.pid) 2>/dev/null && echo bg-alive || echo bg-dead');
      assert.equal(textOf(after), `${pg.workspace}/sub\nyes\nbg-dead\n[exit code: 0]`);
      await bash(sb, `cd ${pg.workspace}`);
    });

    it('stops every kind of never-ending command, keeping shell state and leaving no process behind', async () => {
      await bash(sb, 'cd sub && export KEPT=still');
      // Live (non-zombie) processes, counted with builtins only so the count does not count itself.
      const count = 'n=0; for p in /proc/[0-9]*; do read -r _ _ state _ < $p/stat 2>/dev/null && [ "$state" != Z ] && n=$((n+1)); done; echo $n';
      const baseline = textOf(await bash(sb, count));
      const forever = [
        'while :; do :; done',
        'while :; do sleep 1; done',
        'while :; do sleep 1000 & done',
        'sleep 1000; echo not-reached',
        'trap "" INT; sleep 1000',
        'yes > /dev/null | cat',
        'bash -c "sleep 1000 & sleep 1000"',
      ];
      for (const command of forever) {
        const r = await bash(sb, command, 400);
        assert.equal(r.errorKind, 'timeout', command);
        assert.doesNotMatch(textOf(r), /not-reached|restarted/, command);
        assert.equal(textOf(await bash(sb, 'pwd; echo $KEPT')), `${pg.workspace}/sub\nstill\n[exit code: 0]`, command);
        assert.equal(textOf(await bash(sb, count)), baseline, `processes left after ${command}`);
      }
      await bash(sb, `cd ${pg.workspace}`);
    });

    it('leaves background jobs from earlier calls alone when a later command times out', async () => {
      await bash(sb, 'sleep 1000 & echo $! > earlier.pid');
      await bash(sb, 'sleep 1000', 300);
      assert.match(textOf(await bash(sb, 'kill -0 $(cat earlier.pid) && echo alive; kill $(cat earlier.pid)')), /^alive\n/);
    });

    it('keeps framing while a background job keeps printing between calls', async () => {
      await bash(sb, '(while :; do echo noise; sleep 0.005; done) & echo $! > noisy.pid');
      await new Promise((r) => setTimeout(r, 300));
      const r = await bash(sb, 'echo clean; kill $(cat noisy.pid)');
      assert.match(textOf(r), /clean\n/);
      assert.match(textOf(r), /\[exit code: 0\]$/);
      assert.equal(textOf(await bash(sb, 'sleep 0.1; echo quiet')), 'quiet\n[exit code: 0]');
    });

    it('restarts the shell after `exit`, with state reset', async () => {
      await bash(sb, 'export GONE=1; cd sub');
      const r = await bash(sb, 'exit 5');
      assert.match(textOf(r), /\[exit code: 5\]\n\[the shell exited;/);
      assert.equal(textOf(await bash(sb, 'pwd; echo "[$GONE]"')), `${pg.workspace}\n[]\n[exit code: 0]`);
    });

    it('rejects invalid input as a tool error', async () => {
      const r = await sb.execute('bash', { timeout_ms: 5 });
      assert.equal(r.errorKind, 'tool_error');
      assert.match(textOf(r), /invalid input for bash: command/);
    });
  });

  describe('read_file', () => {
    before(() => {
      writeFileSync(path.join(pg.workspace, 'empty.txt'), '');
      writeFileSync(path.join(pg.workspace, 'lines.txt'), Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
      writeFileSync(path.join(pg.workspace, 'blob.bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0]));
      writeFileSync(path.join(pg.workspace, 'latin1.txt'), Buffer.from('caf\xe9\n', 'latin1'));
      writeFileSync(path.join(pg.workspace, 'long.txt'), 'x'.repeat(5_000));
      // A 1x1 PNG.
      writeFileSync(path.join(pg.workspace, 'dot.png'), Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64'));
    });

    it('numbers lines and reads ranges', async () => {
      assert.equal(textOf(await sb.execute('read_file', { path: 'lines.txt', offset: 3, limit: 2 })), '     3\tline 3\n     4\tline 4\n[showing lines 3-4 of 10; use offset to read more]');
      assert.match(textOf(await sb.execute('read_file', { path: `${pg.workspace}/lines.txt` })), /^ {5}1\tline 1\n[\s\S]*10\tline 10$/);
    });

    it('handles empty, binary, non-UTF-8, long-line and image files', async () => {
      assert.match(textOf(await sb.execute('read_file', { path: 'empty.txt' })), /empty/);
      const binary = await sb.execute('read_file', { path: 'blob.bin' });
      assert.equal(binary.errorKind, 'tool_error');
      assert.match(textOf(binary), /binary/);
      const latin = textOf(await sb.execute('read_file', { path: 'latin1.txt' }));
      assert.match(latin, /not valid UTF-8/);
      assert.match(latin, /café/);
      assert.match(textOf(await sb.execute('read_file', { path: 'long.txt' })), /line truncated/);
      const image = await sb.execute('read_file', { path: 'dot.png' });
      assert.equal(image.content[0]!.type, 'image');
    });

    it('refuses files over the size cap with a pointer to bash', async () => {
      writeFileSync(path.join(pg.workspace, 'big.log'), Buffer.alloc(11 * 1024 * 1024, 'a'));
      const r = await sb.execute('read_file', { path: 'big.log' });
      assert.equal(r.errorKind, 'tool_error');
      assert.match(textOf(r), /over the 10485760-byte limit; read it with bash/);
    });

    it('gives clear errors for missing files, directories and offsets past the end', async () => {
      assert.match(textOf(await sb.execute('read_file', { path: 'nope.txt' })), /file not found: nope.txt/);
      assert.match(textOf(await sb.execute('read_file', { path: 'sub' })), /is a directory/);
      assert.match(textOf(await sb.execute('read_file', { path: 'lines.txt', offset: 50 })), /past the end/);
    });
  });

  describe('write_file and edit_file', () => {
    it('creates parent directories and overwrites', async () => {
      const r = await sb.execute('write_file', { path: 'deep/er/file.txt', content: 'one\n' });
      assert.equal(textOf(r), 'wrote 4 bytes to deep/er/file.txt');
      await sb.execute('write_file', { path: 'deep/er/file.txt', content: 'two\n' });
      assert.equal(readFileSync(path.join(pg.workspace, 'deep/er/file.txt'), 'utf8'), 'two\n');
    });

    it('replaces exactly one match, refuses zero or many, and replaces all on request', async () => {
      const file = path.join(pg.workspace, 'edit.txt');
      writeFileSync(file, 'alpha beta\nbeta gamma\n');
      const many = await sb.execute('edit_file', { path: 'edit.txt', old_string: 'beta', new_string: 'B' });
      assert.equal(many.errorKind, 'tool_error');
      assert.match(textOf(many), /occurs 2 times/);
      const none = await sb.execute('edit_file', { path: 'edit.txt', old_string: 'delta', new_string: 'D' });
      assert.match(textOf(none), /was not found/);
      const same = await sb.execute('edit_file', { path: 'edit.txt', old_string: 'alpha', new_string: 'alpha' });
      assert.match(textOf(same), /identical/);
      await sb.execute('edit_file', { path: 'edit.txt', old_string: 'alpha beta', new_string: 'A $& $1' });
      assert.equal(readFileSync(file, 'utf8'), 'A $& $1\nbeta gamma\n');
      const all = await sb.execute('edit_file', { path: 'edit.txt', old_string: 'a', new_string: '4', replace_all: true });
      assert.equal(textOf(all), 'replaced 3 occurrences in edit.txt');
      assert.equal(readFileSync(file, 'utf8'), 'A $& $1\nbet4 g4mm4\n');
    });

    it('refuses to edit files that are not UTF-8 text, leaving them intact', async () => {
      const latin = Buffer.from('caf\xe9 au lait\n', 'latin1');
      writeFileSync(path.join(pg.workspace, 'latin-edit.txt'), latin);
      const r = await sb.execute('edit_file', { path: 'latin-edit.txt', old_string: 'lait', new_string: 'milk' });
      assert.equal(r.errorKind, 'tool_error');
      assert.match(textOf(r), /not UTF-8 text/);
      assert.deepEqual(readFileSync(path.join(pg.workspace, 'latin-edit.txt')), latin);
    });
  });

  it('refuses a FIFO (made by the model) for every file tool at once, where writing to it used to hang', async () => {
    assert.equal(textOf(await bash(sb, 'mkfifo pipe && ln -s pipe pipe-link && echo made')), 'made\n[exit code: 0]');
    // A hang would be cut at 20 s by the host-hang deadline (sandbox_lost), not waited out.
    const within = { hungAfterMs: 20_000 };
    for (const target of ['pipe', 'pipe-link']) {
      const calls = [
        sb.execute('write_file', { path: target, content: 'x' }, within),
        sb.execute('read_file', { path: target }, within),
        sb.execute('edit_file', { path: target, old_string: 'a', new_string: 'b' }, within),
      ];
      for (const r of await Promise.all(calls)) {
        assert.equal(r.errorKind, 'tool_error', textOf(r));
        assert.match(textOf(r), /pipe is not a regular file/);
      }
    }
    assert.equal(textOf(await bash(sb, 'rm pipe pipe-link && echo fine')), 'fine\n[exit code: 0]');
  });

  describe('glob and grep', () => {
    before(() => {
      mkdirSync(path.join(pg.workspace, 'src/lib'), { recursive: true });
      mkdirSync(path.join(pg.workspace, '.git'), { recursive: true });
      writeFileSync(path.join(pg.workspace, 'src/a.ts'), 'export const needle = 1;\n');
      writeFileSync(path.join(pg.workspace, 'src/lib/b.ts'), 'const other = 2;\n// needle here\n');
      writeFileSync(path.join(pg.workspace, 'src/lib/c.js'), 'needle in js\n');
      writeFileSync(path.join(pg.workspace, '.git/config'), 'needle in git\n');
    });

    it('globs with **, braces and top-level patterns, skipping .git', async () => {
      assert.equal(textOf(await sb.execute('glob', { pattern: 'src/**/*.ts' })), 'src/a.ts\nsrc/lib/b.ts');
      assert.equal(textOf(await sb.execute('glob', { pattern: '**/*.{js,ts}' })), 'src/a.ts\nsrc/lib/b.ts\nsrc/lib/c.js');
      assert.equal(textOf(await sb.execute('glob', { pattern: '*.png' })), 'dot.png');
      assert.match(textOf(await sb.execute('glob', { pattern: '**/config' })), /no files match/);
      assert.match(textOf(await sb.execute('glob', { pattern: '../*' })), /may not contain/);
    });

    it('greps with path and glob filters', async () => {
      assert.equal(textOf(await sb.execute('grep', { pattern: 'needle', path: 'src' })), 'src/a.ts:1:export const needle = 1;\nsrc/lib/b.ts:2:// needle here\nsrc/lib/c.js:1:needle in js');
      assert.equal(textOf(await sb.execute('grep', { pattern: 'need+le', glob: '*.js' })), 'src/lib/c.js:1:needle in js');
      assert.match(textOf(await sb.execute('grep', { pattern: 'zzz-absent' })), /no matches/);
      const bad = await sb.execute('grep', { pattern: '(' });
      assert.equal(bad.errorKind, 'tool_error');
    });
  });

  describe('workspace confinement', () => {
    it('refuses .., absolute paths outside and escaping symlinks, for every file tool', async () => {
      symlinkSync(pg.dataDir, path.join(pg.workspace, 'escape-dir'));
      symlinkSync(path.join(pg.root, 'not-yet'), path.join(pg.workspace, 'dangling'));
      const attempts: [string, Record<string, unknown>][] = [
        ['read_file', { path: '../home/.agentd/marker.txt' }],
        ['read_file', { path: pg.markerFile }],
        ['read_file', { path: 'escape-dir/marker.txt' }],
        ['write_file', { path: '../outside.txt', content: 'x' }],
        ['write_file', { path: 'escape-dir/new.txt', content: 'x' }],
        ['write_file', { path: 'dangling', content: 'x' }],
        ['edit_file', { path: 'escape-dir/marker.txt', old_string: 'data', new_string: 'x' }],
        ['grep', { pattern: 'secret', path: '..' }],
        ['grep', { pattern: 'secret', path: 'escape-dir' }],
        ['glob', { pattern: `${pg.dataDir}/*` }],
      ];
      for (const [tool, input] of attempts) {
        const r = await sb.execute(tool, input);
        assert.equal(r.errorKind, 'tool_error', `${tool} ${JSON.stringify(input)}: ${textOf(r)}`);
        assert.match(textOf(r), /outside the workspace|access refused/, `${tool} ${JSON.stringify(input)}`);
        assert.doesNotMatch(textOf(r), new RegExp(pg.marker));
      }
      assert.equal(readFileSync(pg.markerFile, 'utf8'), pg.marker);
    });
  });
});
