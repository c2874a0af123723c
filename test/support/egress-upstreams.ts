/**
 * Real upstreams for the egress proxy's tests, on 127.0.0.2 (a loopback address the
 * sandbox's clients do not treat as their own, so they send it through the proxy): plain
 * HTTP and HTTPS with a certificate made for the test, each recording what it was sent.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { tempDir } from './temp.js';

export const UPSTREAM_HOST = '127.0.0.2';

export interface RecordingUpstream {
  /** `host:port` */
  authority: string;
  port: number;
  url: string;
  /** What each request carried: its path and headers. */
  seen: Array<{ path: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.2 (key and cert PEM files), and the dir that holds them. */
export function loopbackCertificate(): { key: string; cert: string; dir: string } {
  const dir = tempDir('agentd-egress-tls-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=agentd egress test', '-addext', `subjectAltName=IP:${UPSTREAM_HOST}`, '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { key, cert, dir };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const hello: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from ${req.url}\n`);
};

/** Answers `hello from <path>` (or as `handler` says) over HTTP, or HTTPS with `tls`. */
export async function startRecordingUpstream(tls?: { key: string; cert: string }, handler: Handler = hello): Promise<RecordingUpstream> {
  const seen: RecordingUpstream['seen'] = [];
  const handle: Handler = (req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    handler(req, res);
  };
  const server: Server = tls ? createTlsServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, handle) : createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, UPSTREAM_HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  const authority = `${UPSTREAM_HOST}:${port}`;
  return {
    authority,
    port,
    url: `${tls ? 'https' : 'http'}://${authority}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Serves the files under `root` (a package index mirror) over HTTP on 127.0.0.2: `index.html` for a directory. */
export function startStaticUpstream(root: string): Promise<RecordingUpstream> {
  return startRecordingUpstream(undefined, (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file = normalize(join(root, path));
    if (!file.startsWith(root)) return void res.writeHead(403).end();
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) return void res.writeHead(404).end('not found\n');
    res.writeHead(200, { 'content-type': file.endsWith('.html') ? 'text/html' : 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
}
