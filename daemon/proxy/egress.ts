/**
 * The egress proxy: how a sandbox reaches the network, through the same per-session unix
 * socket as the credential proxy (the sandbox's own network namespace stays closed). It
 * speaks plain HTTP forward proxying (absolute-form requests) and CONNECT tunnels for
 * HTTPS, which it passes through untouched (no TLS interception).
 *
 * Node's http server is the proxy library here: it parses CONNECT and absolute-form
 * requests already, and what a proxy package would add (its own connect) is what must
 * not happen: the address is resolved and checked here, and the connection goes to
 * exactly the address that passed, so a name that resolves to loopback on the second
 * lookup (DNS rebinding) never gets a second lookup.
 */
import { lookup } from 'node:dns/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { exactPattern, normalHost, type NetworkPolicy } from '../../protocol/index.js';
import type { Logger } from '../logger.js';
import type { InterceptionCa } from './interception.js';
import { decideHost, isInternalAddress, namedExactly, type NetworkVerdict } from './network-policy.js';
import { fixedLookup } from './lookup.js';

/** One decision of the proxy, as the session's log records it (network.decided). */
export interface NetworkDecision {
  host: string;
  port: number;
  decision: 'allow' | 'deny';
  reason: string;
  via: 'connect' | 'http';
  address?: string;
}

/** What the egress proxy needs of the session a connection came from (daemon/network.ts). */
export interface EgressSession {
  /** The policy as it stands, and the hosts answers added to it. */
  policy(): Promise<{ policy: NetworkPolicy; added: string[] }>;
  /** Records a decision in the session's log. */
  record(decision: NetworkDecision): Promise<void>;
  /** Asks the session's controllers about a host the policy leaves open; resolves with allow or deny. */
  ask(host: string, port: number, signal: AbortSignal): Promise<NetworkVerdict & { decision: 'allow' | 'deny' }>;
}

/** What the credential proxy contributes for the session: where its credentials are bound, and sending with them. */
export interface BoundCredentials {
  /** Each origin a credential of the session is bound to: `host:port`, and whether it speaks TLS. */
  origins(): Promise<Array<{ pattern: string; tls: boolean }>>;
  /** Sends the request with the credential bound to `target` (its origin and path), at `address`; false when none is. */
  forward(target: URL, address: string, req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

/** Headers of one hop, dropped on the way through. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

class Refused extends Error {}

export class EgressProxy {
  constructor(
    private readonly logger: Logger,
    private readonly ca: InterceptionCa,
  ) {}

  /** `CONNECT host:port`: a TCP tunnel once the policy and the address allow it. */
  async tunnel(sessionId: string, session: EgressSession, credentials: BoundCredentials, req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    const target = parseAuthority(req.url ?? '');
    client.on('error', () => client.destroy());
    if (!target) return refuseSocket(client, 400, `agentd egress proxy: CONNECT needs host:port, got ${JSON.stringify(req.url)}`);
    const abort = new AbortController();
    client.once('close', () => abort.abort());
    let upstream: Socket;
    const down = new Downstream();
    try {
      const origins = await credentials.origins();
      const { address, recorded } = await this.admit(session, origins.map((o) => o.pattern), target.host, target.port, 'connect', abort.signal);
      const bound = origins.find((o) => o.pattern === exactPattern(target.host, target.port));
      if (bound) {
        await recorded;
        return this.intercept(target, bound.tls, address, credentials, client, head);
      }
      // The TCP connect overlaps the decision's write; no byte of the sandbox's goes
      // upstream before the decision is durable (the tunnel is answered after both).
      const opening = open(address, target.port, down.onread);
      await Promise.all([opening, recorded]).catch(async (error: unknown) => {
        (await opening.catch(() => undefined))?.destroy();
        throw error;
      });
      upstream = await opening;
      if (upstream.destroyed) throw new Error(`agentd egress proxy: ${target.host}:${target.port} closed the connection before the tunnel was answered`);
    } catch (error) {
      return refuseSocket(client, error instanceof Refused ? 403 : 502, (error as Error).message);
    }
    // The sandbox's side went while the decision was written: its close came before the listener below.
    if (client.destroyed) return void upstream.destroy();
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    down.into(upstream, client);
    client.pipe(upstream);
    this.logger.log('debug', 'egress tunnel', { sessionId, host: target.host, port: target.port });
  }

  /** An absolute-form request (`GET http://host/path`): forwarded once allowed, a bound credential added when `credential` takes it. */
  async forward(session: EgressSession, credentials: BoundCredentials, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return refuseResponse(res, 400, `agentd egress proxy: not a URL: ${JSON.stringify(req.url)}`);
    }
    if (target.protocol !== 'http:') return refuseResponse(res, 400, `agentd egress proxy: only http:// is forwarded; use CONNECT (HTTPS_PROXY) for ${target.protocol}`);
    const port = Number(target.port || 80);
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    let address: string;
    try {
      const admitted = await this.admit(session, (await credentials.origins()).map((o) => o.pattern), target.hostname, port, 'http', abort.signal);
      await admitted.recorded;
      address = admitted.address;
    } catch (error) {
      return refuseResponse(res, error instanceof Refused ? 403 : 502, (error as Error).message);
    }
    if (await credentials.forward(target, address, req, res)) return;
    await relay(target, address, req, res);
  }

  /**
   * A CONNECT to an origin a credential is bound to: the proxy serves the requests it
   * carries itself (those under the credential's path get it, the rest go on as they came).
   * For HTTPS it ends the sandbox's TLS with a certificate from its own CA (trusted inside);
   * upstream, the real certificate is checked as for any HTTPS request the daemon makes.
   * A tunnel to a plain-HTTP origin (undici tunnels those too) carries plain HTTP.
   */
  private intercept(target: { host: string; port: number }, secure: boolean, address: string, credentials: BoundCredentials, client: Duplex, head: Buffer): void {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) client.unshift(head);
    const inner = secure ? new TLSSocket(client, { isServer: true, secureContext: this.ca.contextFor(target.host), ALPNProtocols: ['http/1.1'] }) : client;
    inner.on('error', () => client.destroy());
    const authority = exactPattern(target.host, target.port);
    const server = createServer((req, res) => {
      // Origin-form only: the tunnel is to this host, whatever a request inside it names.
      if (!req.url?.startsWith('/')) return refuseResponse(res, 400, `agentd egress proxy: a request through the tunnel to ${authority} must name a path, got ${JSON.stringify(req.url)}`);
      const url = new URL(`${secure ? 'https' : 'http'}://${authority}${req.url}`);
      (async () => {
        if (!(await credentials.forward(url, address, req, res))) await relay(url, address, req, res);
      })().catch((error: unknown) => refuseResponse(res, 502, `agentd egress proxy: ${authority}: ${(error as Error).message}`));
    });
    inner.once('close', () => server.close());
    server.emit('connection', inner);
  }

  /**
   * The policy's verdict (asking the controllers when it says ask), then the address:
   * resolved once, each candidate checked, and the one that passed is what is connected to.
   * Every outcome is recorded: a refusal before it is thrown (Refused, with the message
   * the sandbox sees), an admission in `recorded`, which the caller awaits before any byte
   * goes to the address.
   */
  private async admit(
    session: EgressSession,
    bound: readonly string[],
    rawHost: string,
    port: number,
    via: NetworkDecision['via'],
    signal: AbortSignal,
  ): Promise<{ address: string; recorded: Promise<void> }> {
    const host = normalHost(rawHost);
    const { policy, added } = await session.policy();
    let verdict = decideHost(policy, added, bound, host, port);
    if (verdict.decision === 'ask') verdict = await session.ask(host, port, signal);
    const deny = async (reason: string, address?: string): Promise<never> => {
      await session.record({ host, port, decision: 'deny', reason, via, ...(address ? { address } : {}) });
      throw new Refused(`agentd egress proxy: ${host}:${port} is not allowed for this session (${reason})`);
    };
    if (verdict.decision !== 'allow') return deny(verdict.reason);
    const addresses = isIP(host) ? [host] : await lookup(host, { all: true, verbatim: false }).then(
      (found) => found.map((a) => a.address),
      () => [] as string[],
    );
    if (addresses.length === 0) {
      await session.record({ host, port, decision: 'deny', reason: 'the name does not resolve', via });
      throw new Error(`agentd egress proxy: ${host} does not resolve`);
    }
    const exact = namedExactly(policy, bound, verdict, host, port);
    const usable = exact ? addresses : addresses.filter((a) => !isInternalAddress(a));
    if (usable.length === 0) {
      return deny(`${host} resolves to ${addresses[0]}, a loopback, private or link-local address, which only a host named exactly in allow may reach`, addresses[0]);
    }
    const address = usable[0]!;
    return { address, recorded: session.record({ host, port, decision: 'allow', reason: verdict.reason, via, address }) };
  }
}

/** Sends the request on to `target` at `address` as it came (hop headers dropped) and passes the answer back. */
async function relay(target: URL, address: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_HEADERS.has(key)) headers[key] = value;
  headers.host = target.host;
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
    const out = send(target, { method: req.method, headers, lookup: fixedLookup(address) }, resolve);
    out.on('error', reject);
    req.pipe(out);
  }).catch((error: Error) => error);
  if (upstreamRes instanceof Error) return refuseResponse(res, 502, `agentd egress proxy: ${target.host}: ${upstreamRes.message}`);
  const responseHeaders: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(upstreamRes.headers)) if (value !== undefined && !HOP_HEADERS.has(key)) responseHeaders[key] = value;
  res.writeHead(upstreamRes.statusCode ?? 502, responseHeaders);
  await pipeline(upstreamRes, res).catch(() => res.destroy());
}

/** `host:port` or `[v6]:port` of a CONNECT. */
function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(authority);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) return undefined;
  return { host: normalHost(m[1]!), port };
}

/** Bytes a tunnel reads from upstream at a time, into one buffer it keeps. */
const DOWNSTREAM_READ_BYTES = 256 * 1024;

/**
 * A tunnel's upstream-to-sandbox direction, where downloads go: the upstream socket reads
 * into one fixed buffer (net's `onread`), each read is written to the sandbox's side, and
 * reading pauses while such a write is still queued, since the next read reuses the
 * buffer. No buffer is made per chunk and reads are larger than a stream's 64 KB: a 20 MB
 * download costs the proxy markedly less CPU than with pipe() (see bench/egress.ts).
 * The upstream is opened paused (see open), so nothing is read before `into`.
 */
class Downstream {
  private client: Duplex | undefined;
  private upstream: Socket | undefined;
  readonly onread = { buffer: new Uint8Array(DOWNSTREAM_READ_BYTES), callback: (n: number, buffer: Uint8Array) => this.read(n, buffer) };

  /** A write still holds the buffer: the upstream is paused until it has gone. */
  private holding = false;
  private readonly written = () => {
    if (!this.holding) return;
    this.holding = false;
    this.upstream?.resume();
  };

  /**
   * Reading goes on at once when the write went to the kernel within the call (nothing
   * left queued), as it mostly does; otherwise false pauses the upstream until it has.
   * A write's callback comes on the next tick, before any further read.
   */
  private read(n: number, buffer: Uint8Array): boolean {
    this.client!.write(buffer.subarray(0, n), this.written);
    if (this.client!.writableLength === 0) return true;
    this.holding = true;
    return false;
  }

  into(upstream: Socket, client: Duplex): void {
    this.upstream = upstream;
    this.client = client;
    upstream.once('end', () => client.end());
    upstream.resume();
  }
}

function open(address: string, port: number, onread?: Downstream['onread']): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // No Nagle: a TLS handshake's small writes would each wait for the peer's delayed ACK.
    const socket = connect({ host: address, port, noDelay: true, ...(onread ? { onread } : {}) });
    // Paused before it connects, node starts no read: what a server says first (and its
    // end) waits in the kernel until the tunnel is answered and the relay takes over.
    if (onread) socket.pause();
    socket.once('connect', () => {
      socket.off('error', reject);
      // Until its user takes it (a tunnel waits for its decision to be durable), an error
      // only ends it: the user finds it destroyed.
      socket.on('error', () => socket.destroy());
      resolve(socket);
    });
    socket.once('error', (error) => reject(new Error(`agentd egress proxy: connecting to ${address}:${port} failed: ${error.message}`)));
  });
}

/** The answer a refused CONNECT gets: the status line says why, for clients that show only that. */
function refuseSocket(client: Duplex, status: number, message: string): void {
  const body = `${message}\n`;
  const reason = message.replace(/[\r\n]/g, ' ');
  client.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export function refuseResponse(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-agentd-egress': 'refused' });
  res.end(`${message}\n`);
}
