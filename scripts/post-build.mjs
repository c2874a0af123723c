// After tsc: marks the CLI entry executable (npm links bin files but tsc does not set
// modes), and bundles the web client (clients/web) with esbuild into dist/clients/web/,
// the files the daemon's listener serves at /: one script, its stylesheet, the page.
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * The shared fold validates events with the protocol's zod schemas, so zod goes into the
 * page; its error messages in ~40 languages (re-exported by `z`, so never tree-shaken)
 * would be half the page. The page keeps English only.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    const en = fileURLToPath(new URL('node_modules/zod/v4/locales/en.js', new URL('../', import.meta.url)));
    b.onResolve({ filter: /locales\/index\.js$/ }, (args) => (args.importer.includes('/node_modules/zod/') ? { path: 'zod-locales', namespace: 'zod-en' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, () => ({ contents: `export { default as en } from ${JSON.stringify(en)};`, resolveDir: fileURLToPath(new URL('../', import.meta.url)) }));
  },
};

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
  plugins: [zodEnglishOnly],
});
for (const file of ['index.html', 'app.css']) copyFileSync(new URL(file, web), new URL(file, out));
copyFileSync(new URL('clients/vscode/media/agentd.svg', root), new URL('favicon.svg', out));
