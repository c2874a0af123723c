// `npm run package:vscode`: type-check the extension, bundle it with esbuild into
// dist/extension.js, and pack the .vsix with vsce (offline: --no-dependencies, since
// the bundle carries everything). The .vsix goes to .build/ (gitignored).
// `--bundle-only [--outfile PATH]` stops after the bundle (tests load it in a stub host).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const extensionDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(extensionDir, '../..');
const bin = (name) => join(root, 'node_modules/.bin', name);

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const args = process.argv.slice(2);
const bundleOnly = args.includes('--bundle-only');
const outfileAt = args.indexOf('--outfile');
const outfile = outfileAt >= 0 ? resolve(args[outfileAt + 1]) : join(extensionDir, 'dist/extension.js');

if (!bundleOnly) run(bin('tsc'), ['-p', join(extensionDir, 'tsconfig.json')], root);
await build({
  entryPoints: [join(extensionDir, 'src/extension.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  external: ['vscode'],
  // The protocol and client library are ESM and read import.meta.url; a CommonJS bundle has none.
  define: { 'import.meta.url': '__agentdImportMetaUrl' },
  banner: { js: "const __agentdImportMetaUrl = require('url').pathToFileURL(__filename).href;" },
  sourcemap: false,
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
if (bundleOnly) process.exit(0);
const out = process.env.AGENTD_VSIX_OUT ?? join(root, '.build/agentd-vscode.vsix');
mkdirSync(dirname(out), { recursive: true });
run(bin('vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '--out', out], extensionDir);
process.stdout.write(`${out}\n`);
