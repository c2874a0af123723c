// After tsc: marks the CLI entry executable (npm links bin files but tsc does not set modes),
// bundles the web client (clients/web) with esbuild into dist/clients/web/ (the files the
// daemon's listener serves at /: one script, its stylesheet, the page), and bundles the sandbox's tool host, so each sandbox
// loads its code from one file instead of resolving ~200 modules at start, compiled from a code cache instead of parsed:
// - main.cjs: the entry (sandbox/host/start.ts), which loads host.cjs with host.cjs.cache;
// - host.cjs: the host and what every sandbox runs (CommonJS: node starts its CommonJS loader
//   faster than its ESM one), and host.cjs.cache, V8's code cache of it (sandbox/host/code-cache.ts);
// - search.cjs (glob and grep, with classic zod, which alone costs about what node's boot
//   does) and session-servers.cjs (whose MCP client comes from node_modules, for sessions
//   with servers of their own): required on first use. The host's dynamic imports become
//   require() calls (code compiled through node:vm cannot import() on node 20);
// - fetch-proxy.cjs, preloaded into the sandbox's node processes (NODE_OPTIONS), and
//   undici-agent.cjs, which it loads on a process's first fetch (see sandbox/host/fetch-proxy.ts).
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

// The sandbox tool host.

const dist = (path) => new URL(`../dist/${path}`, import.meta.url).pathname;
const outdir = dist('sandbox/host/bundle');
/** The lazy modules, and the bundle each is required from. */
const LAZY = { './glob.js': './search.cjs', './grep.js': './search.cjs', './session-servers.js': './session-servers.cjs' };
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  outdir,
  outExtension: { '.js': '.cjs' },
  external: ['@lydell/node-pty', '@modelcontextprotocol/sdk'],
  supported: { 'dynamic-import': false },
};
rmSync(outdir, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { host: dist('sandbox/host/main.js') },
  plugins: [{ name: 'lazy', setup: (b) => b.onResolve({ filter: /^\.\/(glob|grep|session-servers)\.js$/ }, (args) => ({ path: LAZY[args.path], external: true })) }],
});
await build({ ...common, entryPoints: { main: dist('sandbox/host/start.js'), 'session-servers': dist('sandbox/host/session-servers.js') } });
// Preloaded into the sandbox's node processes, so their fetch uses the egress proxy; undici
// itself (undici-agent.cjs) is loaded on a process's first fetch.
await build({
  ...common,
  entryPoints: { 'fetch-proxy': dist('sandbox/host/fetch-proxy.js'), 'undici-agent': dist('sandbox/host/undici-agent.js') },
  minify: true,
  plugins: [
    // undici's cache store needs node:sqlite, which node 20 lacks; the proxy agent never loads it.
    {
      name: 'no-sqlite',
      setup: (b) => {
        b.onResolve({ filter: /^node:sqlite$/ }, () => ({ path: 'node:sqlite', namespace: 'absent' }));
        b.onLoad({ filter: /.*/, namespace: 'absent' }, () => ({ contents: 'throw new Error("node:sqlite is not available in this node");', loader: 'js' }));
      },
    },
  ],
});
await build({
  ...common,
  stdin: { contents: "export { globTool } from './glob.js';\nexport { grepTool } from './grep.js';\n", resolveDir: dist('sandbox/tools'), sourcefile: 'search.js' },
  outdir: undefined,
  outfile: `${outdir}/search.cjs`,
});

// The code cache, made after the host module's top level has run (here: it starts nothing).
const { compileHost, loadHost } = await import(dist('sandbox/host/code-cache.js'));
const host = `${outdir}/host.cjs`;
const script = compileHost(host);
loadHost(script, host, createRequire(host));
writeFileSync(`${host}.cache`, script.createCachedData());
