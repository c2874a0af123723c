/** `npm run package:vscode` builds an installable .vsix: a zip with the manifest and the bundle. */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repository root: the compiled test may sit at any depth under it (dist/, .build/...). */
function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'clients/vscode/package.json'))) return dir;
  }
  throw new Error('no repository root above this test');
}
const ROOT = repoRoot();

/** The entries of a zip file, read from its central directory; `read` inflates one. */
export function zipEntries(zip: Buffer): Map<string, () => Buffer> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, 'a zip has an end-of-central-directory record');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries = new Map<string, () => Buffer>();
  for (let i = 0; i < count; i++) {
    assert.equal(zip.readUInt32LE(at), 0x02014b50, 'central directory entry');
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    entries.set(name, () => {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      return method === 8 ? inflateRawSync(data) : data;
    });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

describe('vscode extension packaging', () => {
  it('npm run package:vscode produces a .vsix with extension/package.json and extension/dist/extension.js', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentd-vsix-'));
    try {
      const out = join(dir, 'agentd-vscode.vsix');
      const result = spawnSync('npm', ['run', 'package:vscode'], {
        cwd: ROOT,
        env: { ...process.env, AGENTD_VSIX_OUT: out, npm_config_offline: 'true' },
        encoding: 'utf8',
        timeout: 240_000,
      });
      assert.equal(result.status, 0, `package:vscode failed:\n${result.stdout}\n${result.stderr}`);
      const entries = zipEntries(readFileSync(out));
      for (const name of ['extension.vsixmanifest', 'extension/package.json', 'extension/dist/extension.js', 'extension/readme.md', 'extension/media/chat.js', 'extension/media/chat.css']) {
        assert.ok(entries.has(name), `${name} in ${[...entries.keys()].join(', ')}`);
      }
      assert.ok(![...entries.keys()].some((n) => n.includes('/src/') || n.endsWith('.ts') || n.includes('node_modules')), 'sources and node_modules stay out');
      const manifest = JSON.parse(entries.get('extension/package.json')!().toString('utf8')) as Record<string, any>;
      assert.equal(manifest.main, './dist/extension.js');
      assert.ok(manifest.engines.vscode);
      assert.deepEqual(Object.keys(manifest.contributes.configuration.properties).sort(), ['agentd.dataDir', 'agentd.path', 'agentd.remote', 'agentd.remoteCaFile']);
      const bundle = entries.get('extension/dist/extension.js')!().toString('utf8');
      assert.match(bundle, /require\("vscode"\)/, 'vscode stays external');
      assert.doesNotMatch(bundle, /import\.meta/, 'no ESM-only syntax left in the CommonJS bundle');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
