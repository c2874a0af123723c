/**
 * The credential proxy's header handling as a unit: the header each binding injects, and
 * what of a sandbox's request reaches the upstream (a real HTTP server that records what
 * it got), through a real CredentialProxy on a unix socket over a real vault in a temp dir.
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { Logger } from '../daemon/logger.js';
import type { EgressSession } from '../daemon/proxy/egress.js';
import { authHeader, CredentialProxy, type ProxyEndpoint } from '../daemon/proxy/proxy.js';
import { Vault } from '../daemon/vault/vault.js';
import { tempDir } from './support/temp.js';

const TOKEN = 'tok-6d1f9c2b7a';
/** These tests are of the credential proxy's paths: the egress proxy on the same socket lets nothing out. */
const DENY_ALL_EGRESS: EgressSession = {
  policy: async () => ({ policy: { default: 'deny' }, added: [] }),
  record: async () => undefined,
  ask: async () => ({ decision: 'deny', reason: 'no questions here' }),
};

describe('authHeader', () => {
  const cases: Array<[string, Parameters<typeof authHeader>[0], [string, string]]> = [
    ['http, default', { kind: 'http', url: 'https://api.example' }, ['authorization', `Bearer ${TOKEN}`]],
    ['http, own header', { kind: 'http', url: 'https://api.example', header: 'X-Api-Key: key={value}' }, ['x-api-key', `key=${TOKEN}`]],
    ['http, value twice', { kind: 'http', url: 'https://api.example', header: 'Authorization: Token {value} {value}' }, ['authorization', `Token ${TOKEN} ${TOKEN}`]],
    ['git', { kind: 'git', url: 'https://git.example/r.git' }, ['authorization', `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`]],
    ['mcp', { kind: 'mcp', url: 'https://mcp.example' }, ['authorization', `Bearer ${TOKEN}`]],
  ];
  for (const [name, binding, expected] of cases) {
    it(name, () => assert.deepEqual(authHeader(binding, TOKEN), expected));
  }
});

describe('credential proxy headers', () => {
  let upstream: Server;
  let upstreamUrl = '';
  let endpoint: ProxyEndpoint;
  /** What the upstream got, per request, and what it answers next. */
  const got: IncomingHttpHeaders[] = [];
  let answer: { headers: Record<string, string>; body: Buffer } = { headers: {}, body: Buffer.from('ok') };
  const logged: string[] = [];
  const logger: Logger = { log: (level, message) => void logged.push(`${level} ${message}`) };

  before(async () => {
    upstream = createServer((req, res) => {
      got.push(req.headers);
      res.writeHead(200, answer.headers);
      res.end(answer.body);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const dir = tempDir('agentd-proxy-');
    const vault = new Vault(join(dir, 'vault.json'), join(dir, 'vault.key'));
    await vault.set('API', TOKEN, { kind: 'http', url: upstreamUrl, header: 'X-Api-Key: {value}' });
    await vault.set('REMOTE', `mcp-${TOKEN}`, { kind: 'mcp', url: upstreamUrl });
    endpoint = await new CredentialProxy(vault, logger, join(dir, 'proxies')).open('s_proxytest001', ['API', 'REMOTE'], DENY_ALL_EGRESS);
  });
  after(async () => {
    await endpoint.close();
    await new Promise((resolve) => upstream.close(resolve));
  });

  /** A request from the sandbox's side: to the proxy's socket, as `$AGENTD_PROXY/<path>`. */
  function call(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: endpoint.socketPath, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('sends the binding header, and none of the credentials or hop headers the sandbox set', async () => {
    got.length = 0;
    const res = await call('/API/v1/things?x=1', {
      authorization: 'Bearer stolen-elsewhere',
      cookie: 'session=sandbox',
      'proxy-authorization': 'Basic c2FuZGJveA==',
      'x-api-key': 'sandbox-made-this-up',
      connection: 'keep-alive, x-custom',
      te: 'trailers',
      'x-request-id': 'kept',
    });
    assert.equal(res.status, 200);
    const [seen] = got;
    assert.equal(seen!['x-api-key'], TOKEN);
    for (const dropped of ['authorization', 'cookie', 'proxy-authorization', 'te']) assert.equal(seen![dropped], undefined, dropped);
    assert.equal(seen!['x-request-id'], 'kept');
    assert.equal(seen!.host, new URL(upstreamUrl).host, 'the upstream host, not the one the sandbox named');
  });

  it('asks only for encodings it can decode to redact, and decodes what comes back', async () => {
    got.length = 0;
    answer = { headers: { 'content-encoding': 'gzip', 'x-echo': `key ${TOKEN}` }, body: gzipSync(`body with ${TOKEN}`) };
    const res = await call('/API/x', { 'accept-encoding': 'zstd, gzip;q=0.5, compress, br' });
    await call('/API/y', { 'accept-encoding': 'zstd' });
    answer = { headers: {}, body: Buffer.from('ok') };
    assert.deepEqual(got.map((h) => h['accept-encoding']), ['gzip;q=0.5, br', undefined]);
    assert.equal(res.headers['content-encoding'], undefined, 'the body goes out decoded');
    assert.equal(res.body, 'body with [REDACTED:API]');
    assert.equal(res.headers['x-echo'], 'key [REDACTED:API]');
  });

  it('refuses an upstream encoding it cannot decode, rather than pass it on unredacted', async () => {
    answer = { headers: { 'content-encoding': 'zstd' }, body: Buffer.from(`raw ${TOKEN}`) };
    const res = await call('/API/z');
    answer = { headers: {}, body: Buffer.from('ok') };
    assert.equal(res.status, 502);
    assert.doesNotMatch(res.body, new RegExp(TOKEN));
  });

  it('refuses a name the session may not use, and a credential bound for the daemon only (mcp)', async () => {
    got.length = 0;
    for (const path of ['/OTHER/x', '/REMOTE/x', '/', '/api/x']) {
      const res = await call(path, { authorization: 'Bearer from-sandbox' });
      assert.equal(res.status, 403, path);
      assert.match(res.body, /allowed: API \(http /);
    }
    assert.deepEqual(got, [], 'nothing reached the upstream');
  });
});
