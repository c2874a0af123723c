/**
 * `agentd daemon --listen HOST:PORT`: the daemon's protocol over WebSocket (TLS, or
 * plain on loopback), the web client, and health checks. A connection is authenticated
 * by its token before it is upgraded, gets exactly its token's access, and is held to
 * the same per-connection checks and limits as the unix socket (serveConnection), plus
 * what a network needs: deadlines for handshakes, pings, a limit of connections per
 * token, and Origin checks for browsers.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode, MAX_FRAME_BYTES } from '../../protocol/index.js';
import type { TokenAccess } from '../access.js';
import type { ListenConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { serveConnection, type ServeState } from '../rpc/serve.js';
import type { TokenService } from '../tokens.js';
import { StartError } from '../start-error.js';
import { authenticate, HttpRefusal, type ListenerIdentity } from './auth.js';
import { httpHandler, type Readiness } from './http.js';
import { webSocketTransport } from './ws-transport.js';

/** The close code a connection gets when its token (or web login) is revoked or expires. */
export const CLOSE_TOKEN_ENDED = 4001;
/** Live connections' tokens are looked up again this often: a revocation the cluster bus did not carry still ends them. */
const RECHECK_MS = 30_000;

export interface RemoteDeps<C> {
  config: ListenConfig;
  state: ServeState<C>;
  tokens: TokenService;
  logger: Logger;
  webRoot: string | undefined;
  readiness: () => Promise<Readiness>;
}

export interface RemoteListener {
  /** ws:// or wss://, with the port actually bound (for port 0). */
  readonly url: string;
  /** Refuses new connections and closes the open ones (1001, going away). */
  close(): Promise<void>;
}

interface Live {
  ws: WebSocket;
  access: TokenAccess;
  /** Answered the last ping. */
  alive: boolean;
  expiry?: NodeJS.Timeout;
}

function listenServer(config: ListenConfig): Server {
  if (!config.tls) return createHttpServer();
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(config.tls.certFile);
    key = readFileSync(config.tls.keyFile);
  } catch (error) {
    throw new StartError(`cannot read the TLS certificate or key: ${(error as Error).message}`);
  }
  try {
    return createHttpsServer({ cert, key, minVersion: 'TLSv1.2', handshakeTimeout: config.handshakeTimeoutMs });
  } catch (error) {
    // Never the key's bytes: only what is wrong with them.
    throw new StartError(`the TLS certificate or key cannot be used: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** An HTTP answer written on a socket not yet upgraded, then closed. */
function refuseUpgrade(socket: Duplex, refusal: HttpRefusal): void {
  const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message, ...(refusal.data !== undefined ? { data: refusal.data } : {}) } });
  const extra = refusal.status === 401 ? 'WWW-Authenticate: Bearer\r\n' : '';
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}

export async function startRemoteListener<C>(deps: RemoteDeps<C>): Promise<RemoteListener> {
  const { config, logger, tokens } = deps;
  const server = listenServer(config);
  server.maxConnections = config.maxConnections;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  const live = new Set<Live>();
  const perToken = new Map<string, number>();
  let closing = false;
  // The port is the one bound once listening (port 0 picks one).
  const identity: ListenerIdentity = { scheme: config.tls ? 'https' : 'http', port: config.port, origins: new Set(config.origins.map((o) => o.toLowerCase())) };

  // A connection has handshakeTimeoutMs from its TLS handshake (node's handshakeTimeout covers
  // that one) to the end of its request's headers; each connection carries one request
  // (http.ts answers Connection: close), so a slow one cannot hold a socket for long.
  const deadlines = new WeakMap<Duplex, NodeJS.Timeout>();
  const arm = (socket: Socket) => {
    const timer = setTimeout(() => {
      logger.log('info', 'closing a connection that did not send its request in time', { from: socket.remoteAddress });
      socket.destroy();
    }, config.handshakeTimeoutMs);
    timer.unref();
    deadlines.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  };
  const disarm = (socket: Duplex) => clearTimeout(deadlines.get(socket));
  server.on(config.tls ? 'secureConnection' : 'connection', arm);
  const handle = httpHandler({ identity, tokens, logger, webRoot: deps.webRoot, readiness: deps.readiness });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    disarm(req.socket);
    handle(req, res);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    logger.log('debug', 'http client error', { error: error.code ?? error.message });
    if (socket.writable && error.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('tlsClientError', (error: Error) => logger.log('debug', 'tls handshake failed', { error: error.message.split('\n')[0] }));

  const endConnections = (test: (entry: Live) => boolean, reason: string) => {
    for (const entry of live) if (test(entry)) entry.ws.close(CLOSE_TOKEN_ENDED, reason);
  };
  tokens.onRevoked((ids) => {
    const gone = new Set(ids);
    endConnections((e) => gone.has(e.access.tokenId) || (e.access.loginId !== undefined && gone.has(e.access.loginId)), 'token revoked');
  });

  const accept = (req: IncomingMessage, socket: Socket, head: Buffer, access: TokenAccess) => {
    const count = perToken.get(access.tokenId) ?? 0;
    if (count >= config.maxConnectionsPerToken) {
      const max = config.maxConnectionsPerToken;
      throw new HttpRefusal(429, ErrorCode.LimitExceeded, `token ${access.name} holds ${max} connections to this daemon already; close one first`, { limit: 'connectionsPerToken', max });
    }
    // Counted once upgraded (ws calls back in this same tick, or never when the handshake is bad).
    wss.handleUpgrade(req, socket, head, (ws) => {
      perToken.set(access.tokenId, (perToken.get(access.tokenId) ?? 0) + 1);
      const entry: Live = { ws, access, alive: true };
      live.add(entry);
      ws.on('pong', () => (entry.alive = true));
      ws.on('error', (error) => logger.log('debug', 'websocket error', { token: access.tokenId, error: error.message }));
      if (access.expiresAt !== null) {
        entry.expiry = setTimeout(() => ws.close(CLOSE_TOKEN_ENDED, 'token expired'), Math.min(2 ** 31 - 1, Math.max(0, access.expiresAt - Date.now())));
        entry.expiry.unref();
      }
      socket.on('close', () => {
        live.delete(entry);
        clearTimeout(entry.expiry);
        const left = (perToken.get(access.tokenId) ?? 1) - 1;
        if (left > 0) perToken.set(access.tokenId, left);
        else perToken.delete(access.tokenId);
      });
      const peer = serveConnection(webSocketTransport(ws, socket), deps.state, access);
      logger.log('info', 'remote connection', { conn: peer.id, token: access.tokenId, role: access.role, via: access.loginId ? 'web login' : 'bearer', from: socket.remoteAddress });
    });
  };

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    disarm(socket);
    socket.on('error', () => undefined);
    const path = (req.url ?? '').split('?')[0];
    const work = async () => {
      if (closing || deps.state.stopping) throw new HttpRefusal(503, ErrorCode.DaemonStopping, 'the daemon is stopping');
      if (path !== '/rpc') throw new HttpRefusal(404, ErrorCode.MethodNotFound, 'the WebSocket endpoint is /rpc');
      const access = await authenticate(req, identity, tokens);
      if (socket.destroyed) return;
      accept(req, socket, head, access);
    };
    work().catch((error: unknown) => {
      const refusal = error instanceof HttpRefusal ? error : new HttpRefusal(500, ErrorCode.InternalError, 'internal error');
      if (!(error instanceof HttpRefusal)) logger.log('error', 'websocket upgrade failed', { error: String((error as Error)?.message ?? error) });
      else logger.log('info', 'websocket upgrade refused', { status: refusal.status, code: refusal.code, from: socket.remoteAddress, ...(refusal.detail ? { detail: refusal.detail } : {}) });
      refuseUpgrade(socket, refusal);
    });
  });

  // A peer that does not answer a ping before the next one is gone, or stalls mid-message.
  const pinger = setInterval(() => {
    for (const entry of live) {
      if (!entry.alive) {
        logger.log('info', 'closing a websocket that did not answer a ping', { token: entry.access.tokenId });
        entry.ws.terminate();
        continue;
      }
      entry.alive = false;
      entry.ws.ping();
    }
  }, config.pingIntervalMs);
  pinger.unref();
  const rechecker = setInterval(() => void recheck(), RECHECK_MS);
  rechecker.unref();
  const recheck = async () => {
    for (const entry of live) {
      const { access } = entry;
      const valid = await tokens.stillValid(access).catch(() => true);
      if (!valid) entry.ws.close(CLOSE_TOKEN_ENDED, 'token revoked');
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new StartError(`cannot listen on ${config.host}:${config.port}: ${error.code === 'EADDRINUSE' ? 'the address is in use' : error.message}`)),
    );
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  identity.port = port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${config.tls ? 'wss' : 'ws'}://${host}:${port}`;
  logger.log('info', 'listening', { url, tls: Boolean(config.tls) });
  return {
    url,
    async close() {
      closing = true;
      clearInterval(pinger);
      clearInterval(rechecker);
      const closed = Promise.all([...live].map((entry) => new Promise((resolve) => entry.ws.once('close', resolve))));
      for (const entry of live) entry.ws.close(1001, 'the daemon is stopping');
      // A peer that does not answer the close handshake soon is cut off.
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      for (const entry of live) entry.ws.terminate();
      server.close();
      server.closeAllConnections();
    },
  };
}
