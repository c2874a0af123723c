import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * Opens the proxy's port on 127.0.0.1 (inside the sandbox's own network namespace) and hands
 * the listening socket to the daemon through the IPC channel it started the host with, so the
 * daemon's proxy accepts the connections itself (sandbox/listener-handover.ts). Resolves with
 * the proxy's base URL once the daemon has closed the channel, and only then: nothing else of
 * the session (shell, servers) starts while the channel is open, so nothing else holds it.
 */
export async function handOverListener(port: number): Promise<string> {
  const send = process.send?.bind(process);
  if (!send || !process.connected) throw new Error('the host has no channel to hand the proxy listener over on');
  // No connection handler: the daemon accepts on this socket, and this copy closes once it has it.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`;
  await new Promise<void>((resolve, reject) => {
    process.once('disconnect', resolve);
    send({ kind: 'proxy-listener' }, server, {}, (error) => error && reject(error));
  });
  server.close();
  return base;
}

/** The channel closes when no listener is handed over. */
export function closeChannel(): void {
  if (process.connected) process.disconnect();
}

/**
 * The environment that sends the sandbox's HTTP clients through the proxy at `base`:
 * curl, git, npm and pip read these variables; node's fetch gets them through a preload
 * (fetch-proxy.ts, bundled next to the host). The sandbox's own loopback stays direct,
 * and so does $AGENTD_PROXY, which is on it.
 */
export function proxyEnv(base: string, nodeOptions: string | undefined): Record<string, string> {
  const preload = path.join(path.dirname(process.argv[1] ?? ''), 'fetch-proxy.cjs');
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    AGENTD_PROXY: base,
    HTTP_PROXY: base,
    HTTPS_PROXY: base,
    http_proxy: base,
    https_proxy: base,
    ALL_PROXY: base,
    all_proxy: base,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    ...(existsSync(preload) ? { NODE_OPTIONS: [nodeOptions, `--require ${preload}`].filter(Boolean).join(' ') } : {}),
  };
}

/** The system's CA bundle where distributions keep it; node's own roots where none is found. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * Makes the TLS clients inside trust `ca` (the proxy's) as well as the system's roots: a
 * bundle of both in `dir`, named by the variables curl, git, pip/requests and openssl read;
 * node adds NODE_EXTRA_CA_CERTS to its own roots.
 */
export async function trustEnv(ca: string, dir: string): Promise<Record<string, string>> {
  const system = SYSTEM_BUNDLES.find((file) => existsSync(file));
  // node:tls only where the system has no bundle: loading it costs a host some 3 ms of start-up.
  const roots = system ? readFileSync(system, 'utf8') : (await import('node:tls')).rootCertificates.join('\n');
  const bundle = path.join(dir, 'agentd-ca-bundle.pem');
  const own = path.join(dir, 'agentd-proxy-ca.pem');
  writeFileSync(bundle, `${roots.trimEnd()}\n${ca}`);
  writeFileSync(own, ca);
  return { SSL_CERT_FILE: bundle, CURL_CA_BUNDLE: bundle, GIT_SSL_CAINFO: bundle, REQUESTS_CA_BUNDLE: bundle, PIP_CERT: bundle, NODE_EXTRA_CA_CERTS: own };
}
