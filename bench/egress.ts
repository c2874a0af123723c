/**
 * Egress proxy figures, one JSON line each, every one beside a baseline from the same run:
 *
 * 1. egress.download_20mb - an HTTPS download of 20 MB from a local server (127.0.0.2, its
 *    own process) with curl through the proxy path a sandbox uses (the host's loopback
 *    forwarder, its own process -> unix socket -> egress proxy -> CONNECT tunnel), vs curl
 *    straight to the server. Median of runs, alternating.
 * 2. egress.connect_setup - a fresh HTTPS connection and a small GET (curl's time_total),
 *    through the proxy vs direct: p50, and the overhead p50 - p50.
 * 3. egress.npm_install   - `npm install` of a small real package set from the registry this
 *    machine reaches, inside a bwrap sandbox of a real daemon through the proxy (the
 *    package-registries preset; the tool call's own duration), vs the same install run
 *    here outside any sandbox. Each with a fresh cache.
 *
 * Run: npm run bench:egress. The host's load average is printed with every figure.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reply } from '../clients/cli/demo/model-emulator.js';
import type { Logger } from '../daemon/logger.js';
import type { EgressSession } from '../daemon/proxy/egress.js';
import { CredentialProxy } from '../daemon/proxy/proxy.js';
import { Vault } from '../daemon/vault/vault.js';
import { SessionPrompt, type Event } from '../protocol/index.js';
import { createSession, ofType, settle, startAgentRig, workspace } from '../test/support/agent.js';
import { loopbackCertificate, UPSTREAM_HOST } from '../test/support/egress-upstreams.js';
import { tempDir } from '../test/support/temp.js';
import { printFigure, round, stats } from './ttft/common.js';

const DOWNLOAD_RUNS = Number(process.env.EGRESS_DOWNLOAD_RUNS ?? 9);
const SETUP_RUNS = Number(process.env.EGRESS_SETUP_RUNS ?? 30);
const NPM_RUNS = Number(process.env.EGRESS_NPM_RUNS ?? 3);
const NPM_PACKAGES = ['is-number@7.0.0', 'ms@2.1.3', 'left-pad@1.3.0', 'escape-string-regexp@4.0.0'];
const SIZE = 20 * 1024 * 1024;

const execFileAsync = promisify(execFile);
const median = (xs: number[]) => stats(xs).p50;

/** curl's own timing of one transfer (seconds -> ms), so process start-up is not counted. Async: the servers share this event loop. */
async function curlMs(args: string[]): Promise<number> {
  const { stdout } = await execFileAsync('curl', ['-sS', '-o', '/dev/null', '-w', '%{time_total}', ...args], { encoding: 'utf8' });
  return Number(stdout) * 1000;
}

/**
 * A child node process running `code`, which prints one line (its result) when ready: the
 * upstream server and the sandbox-side forwarder each get their own event loop, as they
 * have in use (the server is elsewhere, the forwarder is in the sandbox's host process).
 */
async function child(code: string): Promise<{ line: string; stop(): void }> {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    proc.on('exit', (code) => reject(new Error(`bench child exited ${code}`)));
  });
  return { line, stop: () => proc.kill() };
}

const UPSTREAM_CODE = (key: string, cert: string, host: string) => `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
const blob = Buffer.alloc(${SIZE}, 7);
const server = createServer({ key: readFileSync(${JSON.stringify(key)}), cert: readFileSync(${JSON.stringify(cert)}) }, (req, res) => {
  const body = req.url === '/blob' ? blob : Buffer.from('ok\\n');
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
});
server.listen(0, ${JSON.stringify(host)}, () => console.log(server.address().port));`;

const FORWARDER_CODE = (socket: string) => `
import { forwardProxy } from ${JSON.stringify(new URL('../sandbox/host/proxy-forward.js', import.meta.url).href)};
const url = await forwardProxy({ socket: ${JSON.stringify(socket)}, port: 0 });
console.log(url);
setInterval(() => {}, 1 << 30);`;

async function proxyFigures(): Promise<void> {
  const tls = loopbackCertificate();
  const server = await child(UPSTREAM_CODE(tls.key, tls.cert, UPSTREAM_HOST));
  const upstream = { authority: `${UPSTREAM_HOST}:${server.line}`, url: `https://${UPSTREAM_HOST}:${server.line}`, close: async () => server.stop() };
  const dir = tempDir('agentd-bench-egress-');
  const logger: Logger = { log: () => undefined };
  const allowUpstream: EgressSession = {
    policy: async () => ({ policy: { default: 'deny', allow: [upstream.authority] }, added: [] }),
    record: async () => undefined,
    ask: async () => ({ decision: 'deny', reason: 'no questions in the bench' }),
  };
  const endpoint = await new CredentialProxy(new Vault(join(dir, 'vault.json'), join(dir, 'vault.key')), logger, join(dir, 'proxy')).open('s_benchegress0001', [], allowUpstream);
  const forwarder = await child(FORWARDER_CODE(endpoint.socketPath));
  const proxyUrl = forwarder.line;
  const common = ['--cacert', tls.cert];
  /** `runs` fetches of `path` straight from the upstream and through the proxy, alternating. */
  const directAndProxied = async (path: string, runs: number) => {
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let i = 0; i < runs; i++) {
      direct.push(await curlMs([...common, `${upstream.url}${path}`]));
      proxied.push(await curlMs([...common, '-x', proxyUrl, `${upstream.url}${path}`]));
    }
    return { direct, proxied };
  };
  try {
    const { direct, proxied } = await directAndProxied('/blob', DOWNLOAD_RUNS);
    printFigure({
      bench: 'egress',
      figure: 'egress.download_20mb',
      unit: 'ms',
      proxied: median(proxied),
      direct: median(direct),
      ratio: round(median(proxied) / median(direct)),
      target: '<= 1.2x direct',
      runs: DOWNLOAD_RUNS,
    });
    const { direct: setupDirect, proxied: setupProxied } = await directAndProxied('/small', SETUP_RUNS);
    printFigure({
      bench: 'egress',
      figure: 'egress.connect_setup',
      unit: 'ms',
      proxied: stats(setupProxied),
      direct: stats(setupDirect),
      overheadP50: round(median(setupProxied) - median(setupDirect)),
    });
  } finally {
    forwarder.stop();
    await endpoint.close();
    await upstream.close();
  }
}

async function npmOutside(): Promise<number> {
  const dir = tempDir('agentd-bench-npm-');
  writeFileSync(join(dir, 'package.json'), '{"name":"bench","version":"1.0.0"}');
  const started = performance.now();
  const child = spawn('npm', ['install', '--no-audit', '--no-fund', '--cache', join(dir, '.npm-cache'), ...NPM_PACKAGES], { cwd: dir, stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`npm install outside failed (exit ${code})`);
  return performance.now() - started;
}

async function npmFigure(): Promise<void> {
  const rig = await startAgentRig();
  try {
    const client = await rig.daemon.client();
    const inside: number[] = [];
    const outside: number[] = [];
    for (let i = 0; i < NPM_RUNS; i++) {
      outside.push(await npmOutside());
      const ws = workspace();
      writeFileSync(join(ws, 'package.json'), '{"name":"bench","version":"1.0.0"}');
      const sessionId = await createSession(client, { workspace: ws, network: { default: 'deny', presets: ['package-registries'] } });
      // A first call starts the sandbox, so the install's own call does not count its start.
      rig.emulator.script([
        reply.toolUse({ name: 'bash', input: { command: 'true' } }),
        reply.toolUse({ name: 'bash', input: { command: `npm install --no-audit --no-fund --cache /tmp/npm-cache ${NPM_PACKAGES.join(' ')} > /dev/null && echo INSTALLED`, timeout_ms: 600_000 } }),
        reply.text('done'),
      ]);
      await client.request(SessionPrompt, { sessionId, content: 'install' });
      const events: Event[] = await settle(client, sessionId, 900_000);
      const result = ofType(events, 'tool.result')[1]!;
      if (!JSON.stringify(result.data.content).includes('INSTALLED')) throw new Error(`npm install inside failed: ${JSON.stringify(result.data.content)}`);
      inside.push(Number(result.data.durationMs));
    }
    printFigure({
      bench: 'egress',
      figure: 'egress.npm_install',
      unit: 'ms',
      packages: NPM_PACKAGES,
      insideSandboxThroughProxy: median(inside),
      outsideDirect: median(outside),
      ratio: round(median(inside) / median(outside)),
      target: '<= 1.3x outside',
      runs: NPM_RUNS,
    });
  } finally {
    await rig.dispose();
  }
}

await proxyFigures();
if (NPM_RUNS > 0) await npmFigure();
