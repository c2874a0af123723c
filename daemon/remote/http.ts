/**
 * The listener's plain HTTP side: health for load balancers, the web client's files,
 * and its login (a token exchanged once for an HttpOnly, SameSite=Strict session cookie:
 * the token never sits in a URL or in the page's storage).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { ErrorCode } from '../../protocol/index.js';
import { describeAccess } from '../access.js';
import type { Logger } from '../logger.js';
import type { TokenService } from '../tokens.js';
import { authenticate, checkOrigin, HttpRefusal, loginCookie, loginOf, unavailable, type ListenerIdentity } from './auth.js';

export interface Readiness {
  ready: boolean;
  /** Each check's state, for whoever reads /readyz. */
  checks: Record<string, string>;
}

export interface HttpDeps {
  identity: ListenerIdentity;
  tokens: TokenService;
  logger: Logger;
  /** The web client's built files (index.html and what it loads), or undefined when they are not there. */
  webRoot: string | undefined;
  readiness: () => Promise<Readiness>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

/** The page may load its own files and talk to its own origin's WebSocket; nothing else, and no one may frame it. */
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

/** The page's files may be kept, and are asked again each time (answered 304 when unchanged). */
const FILE_CACHING = { 'Cache-Control': 'no-cache' };

/** A login request's body: a token, nothing more. */
const MAX_LOGIN_BYTES = 4096;

interface WebFile {
  type: string;
  body: Buffer;
  etag: string;
}

/** The web client's files, read once at start: a fixed set, so no request can name another path. */
function loadFiles(webRoot: string | undefined): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  if (!webRoot) return files;
  let names: string[];
  try {
    names = readdirSync(webRoot);
  } catch {
    return files;
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(webRoot, name));
    files.set(`/${name}`, { type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return files;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  // One request per connection: the listener's deadline covers each request's headers.
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...headers });
  res.end(body);
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: WebFile): void {
  if (req.headers['if-none-match'] === file.etag) {
    res.writeHead(304, { ...SECURITY_HEADERS, ...FILE_CACHING, ETag: file.etag, Connection: 'close' });
    return void res.end();
  }
  send(res, 200, file.type, file.body, { ...FILE_CACHING, ETag: file.etag });
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json', JSON.stringify(value), headers);
}

export function sendRefusal(res: ServerResponse, refusal: HttpRefusal): void {
  const headers: Record<string, string> = refusal.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
  sendJson(res, refusal.status, { error: { code: refusal.code, message: refusal.message, ...(refusal.data !== undefined ? { data: refusal.data } : {}) } }, headers);
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpRefusal(413, ErrorCode.MessageTooLarge, `a request body may be at most ${max} bytes here`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The token from a login's JSON body `{"token": "..."}`. */
async function loginToken(req: IncomingMessage): Promise<string> {
  // JSON only: a page of another site cannot send this content type without asking (CORS), and we never answer that.
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpRefusal(415, ErrorCode.InvalidRequest, 'send the token as JSON: {"token": "..."}');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readBody(req, MAX_LOGIN_BYTES));
  } catch (error) {
    if (error instanceof HttpRefusal) throw error;
    throw new HttpRefusal(400, ErrorCode.ParseError, 'the body is not JSON');
  }
  const token = (parsed as { token?: unknown } | null)?.token;
  if (typeof token !== 'string') throw new HttpRefusal(400, ErrorCode.InvalidParams, 'the body must be {"token": "..."}');
  return token;
}

/** Handles one plain HTTP request (not an upgrade). */
export function httpHandler(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const files = loadFiles(deps.webRoot);
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>> = {
    'GET /healthz': async (_req, res) => sendJson(res, 200, { ok: true }),
    'GET /readyz': async (_req, res) => {
      const readiness = await deps.readiness();
      sendJson(res, readiness.ready ? 200 : 503, readiness);
    },
    'POST /login': async (req, res) => {
      checkOrigin(req, deps.identity);
      const token = await loginToken(req);
      const login = await deps.tokens.login(token).catch((error: unknown) => Promise.reject(unavailable(error)));
      if (!login) throw new HttpRefusal(401, ErrorCode.Unauthenticated, 'the token is not valid: unknown, revoked or expired');
      deps.logger.log('info', 'web login', { token: login.access.tokenId, login: login.access.loginId });
      sendJson(res, 200, describeAccess(login.access), { 'Set-Cookie': loginCookie(deps.identity, login.cookie, login.maxAgeMs) });
    },
    'POST /logout': async (req, res) => {
      checkOrigin(req, deps.identity);
      const cookie = loginOf(req, deps.identity);
      if (cookie !== undefined) await deps.tokens.logout(cookie).catch((error: unknown) => Promise.reject(unavailable(error)));
      sendJson(res, 200, {}, { 'Set-Cookie': loginCookie(deps.identity, '', 0) });
    },
    // Whether the page is logged in, and as whom.
    'GET /me': async (req, res) => sendJson(res, 200, describeAccess(await authenticate(req, deps.identity, deps.tokens))),
  };
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[`${req.method} ${path}`];
    const file = req.method === 'GET' || req.method === 'HEAD' ? files.get(path) : undefined;
    const work = route
      ? route(req, res)
      : file
        ? Promise.resolve(sendFile(req, res, file))
        : Promise.reject(new HttpRefusal(404, ErrorCode.MethodNotFound, `no ${req.method} ${path.slice(0, 200)} here`));
    work.catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (error instanceof HttpRefusal) {
        if (error.detail) deps.logger.log('warn', 'http request refused', { path: path.slice(0, 200), status: error.status, detail: error.detail });
        return sendRefusal(res, error);
      }
      deps.logger.log('error', 'http request failed', { path: path.slice(0, 200), error: String((error as Error)?.message ?? error) });
      sendJson(res, 500, { error: { code: ErrorCode.InternalError, message: 'internal error' } });
    });
  };
}
