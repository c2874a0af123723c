/** Real upstream servers that demand a token: an HTTP echo, git http-backend, and an MCP server over streamable HTTP. */
import { spawn, execFileSync } from 'node:child_process';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { tempDir } from './temp.js';

export interface Upstream {
  url: string;
  /** Authorization headers seen, in order. */
  seen: string[];
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1', tls?: { key: string; cert: string }): Promise<{ server: Server; url: string }> {
  const server = tls ? createTlsServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, url: `${tls ? 'https' : 'http'}://${host}:${(server.address() as AddressInfo).port}` };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Answers with what it was asked, and with the secret itself when asked to (to test response redaction). */
export async function startHttpUpstream(token: string): Promise<Upstream> {
  const seen: string[] = [];
  const { server, url } = await listen((req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end('missing or wrong token\n');
      return;
    }
    const echoSecret = req.url?.includes('echo-secret');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, path: req.url, method: req.method, ...(echoSecret ? { leaked: `the token is ${token}` } : {}) }));
  });
  return { url, seen, close: () => close(server) };
}

/** The ways an upstream can echo a token, by name: what /echo/<name> answers (the test knows each exact form). */
export const ECHO_FORMS = {
  raw: (t: string) => `the token is ${t}`,
  bearer: (t: string) => `you sent Authorization: Bearer ${t}`,
  basic: (t: string) => `as basic auth: Basic ${Buffer.from(`agent:${t}`).toString('base64')}`,
  base64: (t: string) => Buffer.from(t).toString('base64'),
  base64url: (t: string) => Buffer.from(`~~${t}`).toString('base64url'),
  hex: (t: string) => Buffer.from(t).toString('hex'),
  HEX: (t: string) => Buffer.from(t).toString('hex').toUpperCase(),
  percent: (t: string) => encodeURIComponent(`${t}/?&`),
  'percent-all': (t: string) => [...Buffer.from(t)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
  'json-u': (t: string) => `{"token":"${[...t].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}`,
  'json-u-mixed': (t: string) => `{"token":"${[...t].map((c, i) => (i % 3 ? c : `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)).join('')}"}`,
  'line-split': (t: string) => `${t.slice(0, 10)}\n${t.slice(10)}`,
  'folded-base64': (t: string) => Buffer.from(`prefix ${t} suffix`).toString('base64').replace(/(.{8})/g, '$1\r\n'),
} satisfies Record<string, (token: string) => string>;
export type EchoForm = keyof typeof ECHO_FORMS;

/**
 * An upstream that demands the token and echoes it back in any of ECHO_FORMS
 * (/echo/<form>), in a response header (/echo-header), compressed whatever the
 * client accepts (/echo-gzip, /echo-deflate, /echo-br), in an encoding nothing here
 * can decode (/echo-zstd), or one byte per write (/echo-trickle).
 */
export async function startEchoUpstream(token: string): Promise<Upstream> {
  const seen: string[] = [];
  const compressors: Record<string, (b: Buffer) => Buffer> = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync };
  const { server, url } = await listen((req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end('missing or wrong token\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const form = /^\/echo\/(.+)$/.exec(path)?.[1];
    const coding = /^\/echo-(gzip|deflate|br)$/.exec(path)?.[1];
    if (form && form in ECHO_FORMS) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(ECHO_FORMS[form as EchoForm](token));
    } else if (path === '/echo-header') {
      res.writeHead(200, { 'x-echo': `Bearer ${token}` }).end('see the headers\n');
    } else if (coding) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': coding }).end(compressors[coding]!(Buffer.from(`compressed: ${token}`)));
    } else if (path === '/echo-zstd') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'zstd' }).end(Buffer.from(`not really zstd: ${token}`));
    } else if (path === '/echo-trickle') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const bytes = Buffer.from(`trickled: ${token} done`);
      let i = 0;
      const next = (): void => {
        if (i >= bytes.length) return void res.end();
        res.write(bytes.subarray(i, ++i));
        setImmediate(next);
      };
      next();
    } else {
      res.writeHead(404).end('no such echo\n');
    }
  });
  return { url, seen, close: () => close(server) };
}

/**
 * A bare git repository served by git http-backend (smart HTTP, push enabled) behind Basic
 * auth with the token (none when it is ''), on `host` (127.0.0.2: one the sandbox reaches through the egress proxy),
 * over HTTPS with `tls`.
 */
export async function startGitUpstream(token: string, host = '127.0.0.1', tls?: { key: string; cert: string }): Promise<Upstream & { repoDir: string; log(): string }> {
  const root = tempDir('agentd-git-');
  const repoDir = join(root, 'repo.git');
  const seed = join(root, 'seed');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', repoDir]);
  execFileSync('git', ['-C', repoDir, 'config', 'http.receivepack', 'true']);
  execFileSync('git', ['init', '-q', '-b', 'main', seed]);
  execFileSync('sh', ['-c', `cd ${seed} && echo "hello from upstream" > README.md && git add README.md && git -c user.email=t@t -c user.name=t commit -qm seed && git push -q ${repoDir} main`]);
  const expected = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
  const seen: string[] = [];
  const { server, url } = await listen((req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    // No token: a public repository, anyone may clone it.
    if (token !== '' && req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('auth required\n');
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const cgi = spawn('/usr/lib/git-core/git-http-backend', [], {
      env: {
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: u.pathname,
        QUERY_STRING: u.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: String(req.headers['content-type'] ?? ''),
        REMOTE_USER: 'agent',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headerDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headerDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headerDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const [k, ...v] = line.split(':');
        if (!k) continue;
        if (k.toLowerCase() === 'status') status = Number(v.join(':').trim().split(' ')[0]);
        else res.setHeader(k, v.join(':').trim());
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  }, host, tls);
  return {
    url: `${url}/repo.git`,
    repoDir,
    seen,
    log: () => execFileSync('git', ['-C', repoDir, 'log', '--oneline', 'main']).toString(),
    close: () => close(server),
  };
}

/** The SDK's MCP server over streamable HTTP, refusing requests without the token. */
export async function startMcpUpstream(token: string): Promise<Upstream & { calls: string[] }> {
  const seen: string[] = [];
  const calls: string[] = [];
  const { server, url } = await listen(async (req, res) => {
    seen.push(String(req.headers.authorization ?? ''));
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }));
      return;
    }
    const mcp = new McpServer({ name: 'remote-notes', version: '1.0.0' });
    mcp.registerTool('lookup', { description: 'Look a word up in the remote notes', inputSchema: { word: z.string() } }, async ({ word }) => {
      calls.push(word);
      return { content: [{ type: 'text', text: `notes on ${word}: found 3 entries` }] };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void transport.close());
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  return { url: `${url}/mcp`, seen, calls, close: () => close(server) };
}
