/**
 * Egress proxy figures, one JSON line each, every one beside a baseline from the same run:
 *
 * 1. egress.download_20mb - an HTTPS download of 20 MB from a local server (127.0.0.2, its
 *    own process) with curl inside a bwrap sandbox of a real daemon, through the path a
 *    sandbox's traffic takes (HTTPS_PROXY on the sandbox's loopback, whose listener the
 *    daemon's egress proxy accepts on; a CONNECT tunnel),
 *    vs curl straight to the server from here, and vs curl through a minimal relay process
 *    (the floor of any relay hop). All timed by curl itself (time_total), one tool call
 *    per run, alternating; median of runs.
 * 2. egress.connect_setup - a fresh HTTPS connection and a small GET the same way: p50, and
 *    the overhead p50 - p50.
 * 3. egress.npm_install   - `npm install` of a small real package set from the registry this
 *    machine reaches, inside a bwrap sandbox of a real daemon through the proxy (the
 *    package-registries preset; the tool call's own duration), vs the same install run
 *    here outside any sandbox. Each with a fresh cache.
 *
 * Run: npm run bench:egress. The host's load average is printed with every figure.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { reply } from '../clients/cli/demo/model-emulator.js';
import type { AgentdClient } from '../clients/lib/index.js';
import { SessionPrompt, type Event } from '../protocol/index.js';
import { createSession, ofType, settle, startAgentRig, workspace, type AgentRig } from '../test/support/agent.js';
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
/** curl's own timing of one transfer, so neither process start-up nor a tool call's own cost is counted. */
const CURL_TIMED = ['curl', '-sS', '-o', '/dev/null', '-w', '%{time_total}'];

/** One curl run here, outside any sandbox (seconds -> ms). Async: the daemon's child processes keep running meanwhile. */
async function curlMs(args: string[]): Promise<number> {
  const { stdout } = await execFileAsync(CURL_TIMED[0]!, [...CURL_TIMED.slice(1), ...args], { encoding: 'utf8' });
  return Number(stdout) * 1000;
}

/** The upstream: a node HTTPS server in its own process (it is elsewhere in use); prints its port when ready. */
async function startUpstream(key: string, cert: string): Promise<{ port: string; stop(): void }> {
  const code = `
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
const blob = Buffer.alloc(${SIZE}, 7);
const server = createServer({ key: readFileSync(${JSON.stringify(key)}), cert: readFileSync(${JSON.stringify(cert)}) }, (req, res) => {
  const body = req.url === '/blob' ? blob : Buffer.from('ok\\n');
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
});
server.listen(0, ${JSON.stringify(UPSTREAM_HOST)}, () => console.log(server.address().port));`;
  return childWithPort(code, 'upstream');
}

/**
 * The floor of any relay on the path: a minimal one (node, one 256 KB read buffer, as the
 * proxy's tunnels relay) in its own process, between curl here and the upstream, no
 * CONNECT, no sandbox, no policy. Prints its port when ready.
 */
async function startMinimalRelay(port: string): Promise<{ port: string; stop(): void }> {
  const code = `
import net from 'node:net';
net.createServer((client) => {
  let holding = false;
  const buffer = new Uint8Array(256 * 1024);
  const written = () => { if (holding) { holding = false; up.resume(); } };
  const up = net.connect({ host: ${JSON.stringify(UPSTREAM_HOST)}, port: ${Number(port)}, noDelay: true, onread: { buffer, callback: (n, b) => {
    client.write(b.subarray(0, n), written);
    if (client.writableLength === 0) return true;
    holding = true;
    return false;
  } } });
  up.once('end', () => client.end());
  up.on('error', () => client.destroy());
  client.on('error', () => up.destroy());
  client.pipe(up);
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  return childWithPort(code, 'minimal relay');
}

/** A node child running `code`, which prints its port once listening. */
async function childWithPort(code: string, what: string): Promise<{ port: string; stop(): void }> {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.trim());
    });
    proc.on('exit', (code) => reject(new Error(`bench ${what} exited ${code}`)));
  });
  return { port, stop: () => proc.kill() };
}

/** A session whose bwrap sandbox may reach `authority`, and one timed curl in it per call (a tool call each). */
async function sandboxCurl(rig: AgentRig, client: AgentdClient, authority: string, caFile: string): Promise<(args: string) => Promise<number>> {
  const ws = workspace();
  copyFileSync(caFile, join(ws, 'ca.pem'));
  const sessionId = await createSession(client, { workspace: ws, sandbox: { isolation: 'bwrap' }, network: { default: 'deny', allow: [authority] } });
  return async (args) => {
    rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: `${CURL_TIMED.join(' ')} --cacert ca.pem ${args}` } }), reply.text('done')]);
    await client.request(SessionPrompt, { sessionId, content: 'fetch' });
    const result = ofType(await settle(client, sessionId), 'tool.result').at(-1)!;
    const text = (result.data.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('');
    // The bash tool appends "[exit code: N]" on a line of its own.
    const seconds = Number(/^\d+(?:\.\d+)?/.exec(text.trim())?.[0]);
    if (result.data.isError || !Number.isFinite(seconds) || seconds <= 0) throw new Error(`curl in the sandbox failed: ${text}`);
    return seconds * 1000;
  };
}

async function proxyFigures(): Promise<void> {
  const tls = loopbackCertificate();
  const upstream = await startUpstream(tls.key, tls.cert);
  const url = `https://${UPSTREAM_HOST}:${upstream.port}`;
  const relay = await startMinimalRelay(upstream.port);
  const rig = await startAgentRig();
  try {
    const client = await rig.daemon.client();
    const inside = await sandboxCurl(rig, client, `${UPSTREAM_HOST}:${upstream.port}`, tls.cert);
    await inside(`${url}/small`); // starts the sandbox, so no run counts its start
    /** `runs` fetches of `path` straight from the upstream, through the minimal relay and from inside the sandbox, alternating. */
    const directAndProxied = async (path: string, runs: number) => {
      const direct: number[] = [];
      const relayed: number[] = [];
      const proxied: number[] = [];
      for (let i = 0; i < runs; i++) {
        direct.push(await curlMs(['--cacert', tls.cert, `${url}${path}`]));
        relayed.push(await curlMs(['--cacert', tls.cert, '--connect-to', `${UPSTREAM_HOST}:${upstream.port}:127.0.0.1:${relay.port}`, `${url}${path}`]));
        proxied.push(await inside(`${url}${path}`));
      }
      return { direct, relayed, proxied };
    };
    const { direct, relayed, proxied } = await directAndProxied('/blob', DOWNLOAD_RUNS);
    printFigure({
      bench: 'egress',
      figure: 'egress.download_20mb',
      unit: 'ms',
      proxied: median(proxied),
      direct: median(direct),
      ratio: round(median(proxied) / median(direct)),
      target: '<= 1.2x direct',
      floor: 'a minimal relay process (node, one 256 KB read buffer) between curl and the upstream: no CONNECT, sandbox or policy',
      relayed: median(relayed),
      relayedToDirect: round(median(relayed) / median(direct)),
      proxiedToRelayed: round(median(proxied) / median(relayed)),
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
    await rig.dispose();
    relay.stop();
    upstream.stop();
  }
}

async function npmOutside(): Promise<number> {
  const dir = tempDir('agentd-bench-npm-');
  writeFileSync(join(dir, 'package.json'), '{"name":"bench","version":"1.0.0"}');
  const started = performance.now();
  // Without a NODE_EXTRA_CA_CERTS this machine may set (a whole CA bundle: some 40 ms more for
  // every node start): inside, node is given only the sandbox's own CA, so the two start alike.
  const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
  const child = spawn('npm', ['install', '--no-audit', '--no-fund', '--cache', join(dir, '.npm-cache'), ...NPM_PACKAGES], { cwd: dir, stdio: 'ignore', env });
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
