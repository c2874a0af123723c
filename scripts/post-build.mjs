// After tsc: marks the CLI entry executable (npm links bin files but tsc does not set
// modes), and bundles the web client (clients/web) with esbuild into dist/clients/web/,
// the files the daemon's listener serves at /: one small script, its stylesheet, the page.
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const entry = new URL('dist/bin/agentd.cjs', root);
if (existsSync(entry)) chmodSync(entry, 0o755);

const web = new URL('clients/web/', root);
const out = new URL('dist/clients/web/', root);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('app.ts', web).pathname],
  outfile: new URL('app.js', out).pathname,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const file of ['index.html', 'app.css']) copyFileSync(new URL(file, web), new URL(file, out));
copyFileSync(new URL('clients/vscode/media/agentd.svg', root), new URL('favicon.svg', out));
