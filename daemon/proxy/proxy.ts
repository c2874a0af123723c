import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Server as Listener, Socket } from 'node:net';
import type { Duplex, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { exactPattern, type VaultBinding } from '../../protocol/index.js';
import type { Logger } from '../logger.js';
import type { Vault } from '../vault/vault.js';
import { EgressProxy, refuseResponse, type BoundCredentials, type EgressSession } from './egress.js';
import { InterceptionCa } from './interception.js';
import { fixedLookup } from './lookup.js';

/** Headers that belong to one hop, or that a sandbox must never set itself. */
const DROPPED_REQUEST_HEADERS = new Set(['host', 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'authorization', 'cookie']);
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'trailer', 'upgrade']);

/** The header a binding injects, as [name, value]. */
export function authHeader(binding: VaultBinding, secret: string): [string, string] {
  if (binding.kind === 'git') {
    // What git hosts accept for a token over HTTPS (GitHub, GitLab, Gitea): Basic with the token as password.
    return ['authorization', `Basic ${Buffer.from(`x-access-token:${secret}`).toString('base64')}`];
  }
  const template = (binding.kind === 'http' && binding.header) || 'Authorization: Bearer {value}';
  const colon = template.indexOf(':');
  return [template.slice(0, colon).trim().toLowerCase(), template.slice(colon + 1).trim().split('{value}').join(secret)];
}

export interface ProxyEndpoint {
  /** Unix socket the proxy answers on (for the daemon's own use; sandboxes reach it through `serve`). */
  socketPath: string;
  /** Serves connections accepted on `listener` (a sandbox's loopback port, handed over by its host) until either closes. */
  serve(listener: Listener): void;
  /** The CA certificate (PEM) the sandbox trusts, when the session has credentials the proxy may add over HTTPS. */
  ca?: string;
  close(): Promise<void>;
}

/**
 * The only way out of a sandbox: per session, a small HTTP server on a unix socket
 * that serves `/<NAME>/<path>` for exactly the credentials the session may use,
 * forwarding to the bound upstream with the secret added on the way out and
 * redacted from what comes back; and, on the same socket, the egress proxy (egress.ts)
 * for absolute-form requests and CONNECT, as the session's network policy allows.
 */
export class CredentialProxy {
  private readonly egress: EgressProxy;
  private readonly ca: InterceptionCa;

  constructor(
    private readonly vault: Vault,
    private readonly logger: Logger,
    private readonly socketDir: string,
  ) {
    this.ca = new InterceptionCa(`${socketDir}/ca`);
    this.egress = new EgressProxy(logger, this.ca);
  }

  /** The session's credentials as the egress proxy uses them. */
  private bound(sessionId: string, credentials: readonly string[]): BoundCredentials {
    return {
      origins: async () => (await this.usable(credentials)).map((e) => ({ pattern: originPattern(e.binding.url), tls: new URL(e.binding.url).protocol === 'https:' })),
      forward: async (target, address, req, res) => {
        const entry = (await this.usable(credentials)).find((e) => boundTo(e.binding.url, target));
        if (!entry) return false;
        await this.send(sessionId, entry, target, req, res, address);
        return true;
      },
    };
  }

  /** The named credentials that exist and are bound to an HTTP(S) upstream (not an MCP server, which the daemon calls itself). */
  private async usable(credentials: readonly string[]): Promise<Array<{ name: string; value: string; binding: Exclude<VaultBinding, { kind: 'mcp' }> }>> {
    const entries = await Promise.all(credentials.map((name) => this.vault.reveal(name).then((e) => ({ name, ...e }), () => undefined)));
    return entries.flatMap((e) => (e?.binding && e.binding.kind !== 'mcp' ? [{ name: e.name, value: e.value, binding: e.binding }] : []));
  }

  async open(sessionId: string, credentials: readonly string[], network: EgressSession): Promise<ProxyEndpoint> {
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    const socketPath = `${this.socketDir}/${sessionId}.sock`;
    rmSync(socketPath, { force: true });
    const bound = this.bound(sessionId, credentials);
    const server = createServer((req, res) => {
      const absolute = /^[a-z][a-z0-9+.-]*:\/\//i.test(req.url ?? '');
      const handled = absolute ? this.egress.forward(network, bound, req, res) : this.handle(sessionId, credentials, req, res);
      handled.catch((error: unknown) => {
        this.logger.log('warn', 'proxy request failed', { sessionId, error: (error as Error).message });
        if (!res.headersSent) this.refuse(res, 502, `agentd proxy: the upstream request failed`);
        else res.destroy();
      });
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.egress.tunnel(sessionId, network, bound, req, socket, head).catch((error: unknown) => {
        this.logger.log('warn', 'egress tunnel failed', { sessionId, error: (error as Error).message });
        socket.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    // Only this user's processes may connect, whatever the umask was.
    chmodSync(socketPath, 0o600);
    const ca = credentials.length > 0 ? { ca: this.ca.certificate() } : {};
    const listeners = new Set<Listener>();
    const serve = (listener: Listener) => {
      listeners.add(listener);
      listener.once('close', () => listeners.delete(listener));
      listener.on('connection', (socket: Socket) => {
        // No Nagle (an http server sets this on the connections it accepts itself, not on these).
        socket.setNoDelay(true);
        server.emit('connection', socket);
      });
    };
    const close = () => {
      for (const listener of listeners) listener.close();
      return closeServer(server, socketPath);
    };
    return { socketPath, ...ca, serve, close };
  }

  private refuse(res: ServerResponse, status: number, message: string): void {
    refuseResponse(res, status, message);
  }

  private async allowedList(credentials: readonly string[]): Promise<string> {
    const entries = new Map((await this.vault.list()).map((e) => [e.name, e]));
    const described = credentials.map((name) => {
      const binding = entries.get(name)?.binding;
      return binding && binding.kind !== 'mcp' ? `${name} (${binding.kind} ${binding.url})` : undefined;
    });
    const usable = described.filter(Boolean);
    return usable.length > 0 ? usable.join(', ') : 'none';
  }

  private async handle(sessionId: string, credentials: readonly string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, name = '', ...rest] = url.pathname.split('/');
    const entry = credentials.includes(name) ? await this.vault.reveal(name).catch(() => undefined) : undefined;
    const binding = entry?.binding;
    if (!entry || !binding || binding.kind === 'mcp') {
      this.logger.log('warn', 'proxy refused', { sessionId, name });
      this.refuse(res, 403, `agentd proxy: "${name}" is not a credential this session may use; allowed: ${await this.allowedList(credentials)}. Address them as $AGENTD_PROXY/<NAME>/<path>.`);
      return;
    }
    const upstream = new URL(binding.url.replace(/\/+$/, '') + '/' + rest.join('/') + url.search);
    await this.send(sessionId, { name, ...entry }, upstream, req, res);
  }

  /** To `upstream` (at `address` when the egress proxy resolved it) with the credential added, the answer redacted. */
  private async send(sessionId: string, entry: { name: string; value: string; binding?: VaultBinding }, upstream: URL, req: IncomingMessage, res: ServerResponse, address?: string): Promise<void> {
    const { name } = entry;
    const binding = entry.binding!;
    const headers: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(req.headers)) if (value !== undefined && !DROPPED_REQUEST_HEADERS.has(key)) headers[key] = value;
    const [headerName, headerValue] = authHeader(binding, entry.value);
    headers[headerName] = headerValue;
    // Only encodings the proxy can decode to redact may come back.
    const accepted = acceptableEncodings(req.headers['accept-encoding']);
    if (accepted) headers['accept-encoding'] = accepted;
    else delete headers['accept-encoding'];
    const redactor = await this.vault.redactor();
    const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
      const out = send(upstream, { method: req.method, headers, ...(address ? { lookup: fixedLookup(address) } : {}) }, resolve);
      out.on('error', reject);
      req.pipe(out);
    });
    const decoders = decodersFor(upstreamRes.headers['content-encoding'], req.method === 'HEAD' || upstreamRes.statusCode === 204 || upstreamRes.statusCode === 304);
    if (!decoders) {
      upstreamRes.destroy();
      this.logger.log('warn', 'proxy refused an encoding it cannot redact', { sessionId, name, encoding: upstreamRes.headers['content-encoding'] });
      this.refuse(res, 502, `agentd proxy: the upstream answered with content-encoding "${upstreamRes.headers['content-encoding']}", which the proxy cannot decode to redact, so the body was not passed on`);
      return;
    }
    const responseHeaders: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(upstreamRes.headers)) {
      if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(key)) responseHeaders[key] = redactor.value(value);
    }
    // The body goes out decoded: it was redacted as plain bytes.
    if (decoders.length > 0) delete responseHeaders['content-encoding'];
    res.writeHead(upstreamRes.statusCode ?? 502, responseHeaders);
    await pipeline([upstreamRes, ...decoders, redactor.stream(), res]);
    this.logger.log('info', 'proxied', { sessionId, name, method: req.method, host: upstream.host, status: res.statusCode });
  }
}

/** `host:port` of a binding's origin. */
function originPattern(url: string): string {
  const u = new URL(url);
  return exactPattern(u.hostname.replace(/^\[(.*)\]$/, '$1'), Number(u.port || (u.protocol === 'https:' ? 443 : 80)));
}

/** Whether `target` is the origin `bound` names, at or under its path. */
export function boundTo(bound: string, target: URL): boolean {
  const binding = new URL(bound);
  if (binding.origin !== target.origin) return false;
  const prefix = binding.pathname.replace(/\/+$/, '');
  return prefix === '' || target.pathname === prefix || target.pathname.startsWith(`${prefix}/`);
}

/** Content codings the proxy decodes before redacting. */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH }),
  'x-gzip': () => createGunzip({ finishFlush: zlibConstants.Z_SYNC_FLUSH }),
  deflate: () => createInflate({ finishFlush: zlibConstants.Z_SYNC_FLUSH }),
  br: () => createBrotliDecompress({ finishFlush: zlibConstants.BROTLI_OPERATION_FLUSH }),
};

/** The sandbox's Accept-Encoding, less what the proxy could not decode (zstd, compress, ...). */
function acceptableEncodings(header: string | undefined): string | undefined {
  const kept = (header ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => {
      const coding = part.split(';')[0]!.trim().toLowerCase();
      return coding === 'identity' || coding in DECODERS;
    });
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/**
 * Decoders for a response's Content-Encoding, outermost last as applied, so they run
 * in reverse; none for identity or a body-less answer; undefined when one is unknown.
 */
function decodersFor(header: string | undefined, bodyless: boolean): Transform[] | undefined {
  const codings = (header ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (bodyless || codings.length === 0) return [];
  if (!codings.every((c) => c in DECODERS)) return undefined;
  return codings.reverse().map((c) => DECODERS[c]!());
}

function closeServer(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      rmSync(socketPath, { force: true });
      resolve();
    });
    server.closeAllConnections();
  });
}
