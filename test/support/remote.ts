/**
 * Daemons with a network listener (`--listen` with TLS): a self-signed certificate made
 * for the test with openssl, a free loopback port, tokens made with `agentd token create`,
 * and raw WebSocket and HTTPS helpers for the attacks.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { DataLayout } from '../../protocol/index.js';
import { connect, type AgentdClient, type ConnectOptions } from '../../clients/lib/index.js';
import { runAgentd, startDaemon, tempHome, type TestDaemon } from './daemon.js';
import { tempDir } from './temp.js';
import { freePort } from './postgres.js';

export interface TestCert {
  certFile: string;
  keyFile: string;
  /** The certificate, PEM: what clients are told to trust. */
  pem: string;
  /** base64 SHA-256 of its public key, for Chromium's --ignore-certificate-errors-spki-list. */
  spki: string;
}

/** A self-signed certificate for localhost and 127.0.0.1, made now. */
export function selfSignedCert(dir = tempDir('agentd-cert-')): TestCert {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', keyFile, '-out', certFile, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const pem = readFileSync(certFile, 'utf8');
  const spkiDer = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return { certFile, keyFile, pem, spki: createHash('sha256').update(spkiDer).digest('base64') };
}

export interface ListeningDaemon extends TestDaemon {
  /** wss://127.0.0.1:PORT */
  url: string;
  /** https://127.0.0.1:PORT */
  origin: string;
  port: number;
  cert: TestCert;
  /** Restarts the daemon on the same data dir, port and certificate (SIGKILL first when `crash`). */
  restart(options?: { crash?: boolean }): Promise<ListeningDaemon>;
}

export interface ListenOptions {
  layout?: DataLayout;
  env?: Record<string, string>;
  /** config.json's `remote` section (limits and deadlines a test shortens). */
  remote?: Record<string, unknown>;
  cert?: TestCert;
  port?: number;
}

/** `agentd daemon --listen 127.0.0.1:PORT --tls-cert --tls-key`, waited for until it listens. */
export async function startListeningDaemon(options: ListenOptions = {}): Promise<ListeningDaemon> {
  const layout = options.layout ?? tempHome();
  const cert = options.cert ?? selfSignedCert();
  const port = options.port ?? (await freePort());
  if (options.remote) writeFileSync(layout.config, JSON.stringify({ remote: options.remote }), { mode: 0o600 });
  const daemon = await startDaemon({
    layout,
    ...(options.env ? { env: options.env } : {}),
    args: ['--listen', `127.0.0.1:${port}`, '--tls-cert', cert.certFile, '--tls-key', cert.keyFile],
  });
  const origin = `https://127.0.0.1:${port}`;
  await waitForHttps(`${origin}/healthz`, cert.pem);
  return Object.assign(daemon, {
    url: `wss://127.0.0.1:${port}`,
    origin,
    port,
    cert,
    async restart({ crash = false } = {}) {
      await daemon.kill(crash ? 'SIGKILL' : 'SIGTERM');
      return startListeningDaemon({ ...options, layout, cert, port });
    },
  });
}

async function waitForHttps(url: string, ca: string): Promise<void> {
  for (let i = 0; ; i++) {
    const ok = await httpsJson(url, { ca }).then((r) => r.status === 200, () => false);
    if (ok) return;
    if (i > 400) throw new Error(`${url} never answered`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request, trusting `ca`. */
export function httpsJson(url: string, options: { ca: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', ca: options.ca, headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A token made the way a person makes one: `agentd token create ...` on the daemon's machine (stdout has only the token). */
export async function createToken(layout: DataLayout, args: string[]): Promise<string> {
  const made = await runAgentd(layout, ['token', 'create', ...args]);
  if (made.code !== 0) throw new Error(`agentd token create failed: ${made.stderr}`);
  return made.stdout.trim();
}

/** An initialized client over wss:// with `token`. */
export function remoteClient(
  daemon: { url: string; cert: TestCert },
  token: string,
  options: { name?: string; onPermissionRequest?: ConnectOptions['onPermissionRequest'] } = {},
): Promise<AgentdClient> {
  return connect({
    remote: { url: `${daemon.url}/rpc`, token, ca: daemon.cert.pem },
    clientName: options.name ?? 'remote-test',
    ...(options.onPermissionRequest ? { onPermissionRequest: options.onPermissionRequest } : {}),
  });
}

/** What a raw WebSocket got: an upgrade refused with an HTTP status and body, or a connection. */
export type RawOutcome = { refused: { status: number; body: string } } | { ws: RawWs };

/** A WebSocket the test drives byte by byte, with whatever headers it wants. */
export class RawWs {
  readonly messages: Array<Record<string, unknown>> = [];
  closed: { code: number; reason: string } | undefined;
  private nextId = 1;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.messages.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>));
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString('utf8') }));
    ws.on('error', () => undefined);
  }

  static open(daemon: { url: string; cert: TestCert }, headers: Record<string, string>, path = '/rpc'): Promise<RawOutcome> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${daemon.url}${path}`, { headers, ca: daemon.cert.pem, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ refused: { status: res.statusCode ?? 0, body } }));
      });
      ws.once('open', () => resolve({ ws: new RawWs(ws) }));
      ws.once('error', (error) => resolve({ refused: { status: 0, body: error.message } }));
    });
  }

  /** Sends a request and waits for its answer. */
  async request(method: string, params?: unknown): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) }));
    return this.next((m) => m.id === id);
  }

  async next(test: (m: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(test);
      if (found) return found;
      if (this.closed) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting`);
      if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(this.messages).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitClosed(timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the connection was not closed');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closed;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** A raw WebSocket that must have been accepted. */
export async function openRaw(daemon: { url: string; cert: TestCert }, headers: Record<string, string>): Promise<RawWs> {
  const outcome = await RawWs.open(daemon, headers);
  if ('refused' in outcome) throw new Error(`refused: ${outcome.refused.status} ${outcome.refused.body}`);
  return outcome.ws;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
