// After tsc: marks the CLI entry executable (npm links bin files but tsc does not set modes),
// and bundles the sandbox's tool host, so each sandbox loads its code from one file instead of
// resolving ~200 modules at start:
// - main.cjs: the host and what every sandbox runs (CommonJS: node starts its CommonJS loader
//   faster than its ESM one);
// - glob.js, grep.js (+ a shared chunk): loaded on first use, since they pull in classic zod,
//   which would double the host's start; session-servers.js, whose MCP client comes from
//   node_modules, for sessions with servers of their own.
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const entry = new URL('../dist/bin/agentd.cjs', import.meta.url);
if (existsSync(entry)) chmodSync(entry, 0o755);

const dist = (path) => new URL(`../dist/${path}`, import.meta.url).pathname;
const outdir = dist('sandbox/host/bundle');
const LAZY = /^\.\/(glob|grep|session-servers)\.js$/;
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', external: ['@lydell/node-pty'] };
rmSync(outdir, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { main: dist('sandbox/host/main.js') },
  format: 'cjs',
  outdir,
  outExtension: { '.js': '.cjs' },
  // The lazy modules stay dynamic imports, of the bundles built next to this one.
  plugins: [{ name: 'lazy', setup: (b) => b.onResolve({ filter: LAZY }, (args) => ({ path: args.path, external: true })) }],
});
// Preloaded into the sandbox's node processes, so their fetch uses the egress proxy; undici
// itself (undici-agent.cjs) is loaded on a process's first fetch.
await build({
  ...common,
  entryPoints: { 'fetch-proxy': dist('sandbox/host/fetch-proxy.js'), 'undici-agent': dist('sandbox/host/undici-agent.js') },
  format: 'cjs',
  minify: true,
  outdir,
  outExtension: { '.js': '.cjs' },
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
  entryPoints: { glob: dist('sandbox/tools/glob.js'), grep: dist('sandbox/tools/grep.js'), 'session-servers': dist('sandbox/host/session-servers.js') },
  format: 'esm',
  splitting: true,
  outdir,
  chunkNames: 'chunk-[hash]',
  // The session servers' MCP client comes from node_modules (read-only inside), as a dependency.
  external: [...common.external, '@modelcontextprotocol/sdk'],
});
