import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { connect, createServer } from 'node:net';
import path from 'node:path';

/**
 * Serves the credential proxy's unix socket on a loopback port inside the sandbox, so
 * tools see an ordinary base URL (AGENTD_PROXY) while the sandbox has no other way out.
 * Resolves with that base URL.
 */
export async function forwardProxy(proxy: { socket: string; port: number }): Promise<string> {
  const server = createServer((inbound) => {
    const outbound = connect(proxy.socket);
    inbound.setNoDelay(true);
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close);
    outbound.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(proxy.port, '127.0.0.1', () => resolve());
  });
  server.unref();
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : proxy.port;
  return `http://127.0.0.1:${port}`;
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
export function trustEnv(ca: string, dir: string): Record<string, string> {
  const system = SYSTEM_BUNDLES.find((file) => existsSync(file));
  const roots = system ? readFileSync(system, 'utf8') : rootCertificates.join('\n');
  const bundle = path.join(dir, 'agentd-ca-bundle.pem');
  const own = path.join(dir, 'agentd-proxy-ca.pem');
  writeFileSync(bundle, `${roots.trimEnd()}\n${ca}`);
  writeFileSync(own, ca);
  return { SSL_CERT_FILE: bundle, CURL_CA_BUNDLE: bundle, GIT_SSL_CAINFO: bundle, REQUESTS_CA_BUNDLE: bundle, PIP_CERT: bundle, NODE_EXTRA_CA_CERTS: own };
}
