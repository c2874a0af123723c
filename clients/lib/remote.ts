/**
 * Reaching a daemon over the network (`agentd daemon --listen`): a WebSocket to its
 * `/rpc`, with a token, presented to the rest of the client as the same LSP-framed byte
 * stream the unix socket gives. So every client (CLI, `agentd stdio`, MCP, ACP, VS Code
 * through the bridge) goes remote by dialing here instead, and nothing above changes.
 *
 * Where: `--remote URL` or AGENTD_REMOTE (`wss://host:port`; `ws://` only to loopback).
 * The token: AGENTD_TOKEN, or the file AGENTD_TOKEN_FILE (or `--token-file`) names;
 * never an argument. AGENTD_REMOTE_CA names a PEM file to trust besides the system's.
 */
import { readFileSync, statSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import WebSocket from 'ws';
import { ErrorCode, FrameError, FrameSplitter, frameHeader, frameProblemCode, MAX_FRAME_BYTES } from '../../protocol/index.js';
import { DialError } from './socket.cjs';

export interface RemoteTarget {
  /** The daemon's WebSocket endpoint, `wss://host:port/rpc`. */
  url: string;
  token: string;
  /** PEM certificates to trust besides the system's (a self-signed daemon's own). */
  ca?: string;
}

/** The daemon refused the WebSocket (bad token, wrong Origin, too many connections, stopping). */
export class RemoteRefusedError extends DialError {
  constructor(
    readonly status: number,
    /** The stable error code in the refusal's body (protocol/errors.ts), when it had one. */
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The close code the daemon ends a connection with when its token is revoked or expires. */
export const CLOSE_TOKEN_ENDED = 4001;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

/** `wss://host:port` (or https://, or with /rpc) as the endpoint URL; plain ws:// to loopback only. */
export function endpointOf(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DialError(`--remote / AGENTD_REMOTE must be a URL such as wss://host:8443, not ${JSON.stringify(raw)}`);
  }
  const scheme = { 'wss:': 'wss:', 'https:': 'wss:', 'ws:': 'ws:', 'http:': 'ws:' }[url.protocol];
  if (!scheme) throw new DialError(`a remote daemon is reached with wss:// (or ws:// on loopback), not ${url.protocol}//`);
  if (scheme === 'ws:' && !LOOPBACK.test(url.hostname)) {
    throw new DialError(`ws:// sends the token in the clear; it is allowed to loopback only, and ${url.hostname} is not: use wss://`);
  }
  if (url.pathname !== '/' && url.pathname !== '/rpc') throw new DialError(`the remote URL names the daemon (wss://host:port), not a path: ${url.pathname}`);
  return `${scheme}//${url.host}/rpc`;
}

/**
 * A token file must be ours alone, as an ssh key must: no one else may have read it.
 * `/dev/fd/N` is an inherited descriptor (VS Code hands the bridge its token on one),
 * read straight from the descriptor: a socket cannot be opened by its /dev/fd path.
 */
function readTokenFile(path: string): string {
  const fd = /^\/dev\/fd\/(\d+)$/.exec(path)?.[1];
  if (fd !== undefined) {
    let token: string;
    try {
      token = readFileSync(Number(fd), 'utf8').trim();
    } catch (error) {
      throw new DialError(`cannot read the token from ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    if (!token) throw new DialError(`no token on ${path}`);
    return token;
  }
  let info;
  try {
    info = statSync(path);
  } catch (error) {
    throw new DialError(`cannot read the token file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const uid = process.getuid?.();
  if (info.isFile() && ((info.mode & 0o077) !== 0 || (uid !== undefined && info.uid !== uid))) {
    throw new DialError(`the token file ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const token = readFileSync(path, 'utf8').trim();
  if (!token) throw new DialError(`the token file ${path} is empty`);
  return token;
}

/**
 * The remote daemon to use, from `url` (a --remote option) or AGENTD_REMOTE; undefined
 * when neither is set (the local daemon, then).
 */
export function remoteTarget(url: string | undefined, env: NodeJS.ProcessEnv = process.env, tokenFile?: string): RemoteTarget | undefined {
  const raw = url ?? env.AGENTD_REMOTE;
  if (!raw) return undefined;
  const file = tokenFile ?? env.AGENTD_TOKEN_FILE;
  const token = env.AGENTD_TOKEN ? env.AGENTD_TOKEN.trim() : file ? readTokenFile(file) : undefined;
  if (!token) throw new DialError('a remote daemon needs a token: set AGENTD_TOKEN, or AGENTD_TOKEN_FILE to a file holding it (`agentd token create` on the daemon\'s machine makes one)');
  let ca: string | undefined;
  if (env.AGENTD_REMOTE_CA) {
    try {
      ca = readFileSync(env.AGENTD_REMOTE_CA, 'utf8');
    } catch (error) {
      throw new DialError(`cannot read AGENTD_REMOTE_CA ${env.AGENTD_REMOTE_CA}: ${(error as Error).message}`);
    }
  }
  return { url: endpointOf(raw), token, ...(ca ? { ca } : {}) };
}

/** The refusal's JSON body `{error: {code, message}}`, read off the HTTP answer. */
function refusal(url: string, status: number, body: string): RemoteRefusedError {
  let code: number | undefined;
  let message = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'number') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not ours: the status says enough
  }
  const name = code === undefined ? `HTTP ${status}` : `HTTP ${status}, code ${code}`;
  return new RemoteRefusedError(status, code, `${url} refused the connection (${name}): ${message || 'no reason given'}`);
}

/**
 * Connects to a remote daemon. Resolves with an LSP-framed duplex: what is written to it
 * is cut into frames, each sent as one WebSocket message, and each message that comes
 * back is framed for the reader. Rejects with RemoteRefusedError when the daemon says no.
 */
export function dialRemote(target: RemoteTarget, options: { timeoutMs?: number } = {}): Promise<RemoteStream> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target.url, {
      headers: { Authorization: `Bearer ${target.token}` },
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: options.timeoutMs ?? 10_000,
      ...(target.ca ? { ca: [...rootCertificates, target.ca] } : {}),
    });
    let settled = false;
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body = (body + chunk).slice(0, 4096)));
      res.on('end', () => {
        settled = true;
        ws.terminate();
        reject(refusal(target.url.replace(/\/rpc$/, ''), res.statusCode ?? 0, body));
      });
    });
    ws.once('open', () => {
      settled = true;
      resolve(new RemoteStream(ws));
    });
    ws.once('error', (error) => {
      if (settled) return;
      settled = true;
      // Never the token: only where and what went wrong.
      reject(new DialError(`cannot reach the agentd daemon at ${target.url.replace(/\/rpc$/, '')}: ${error.message}`));
    });
  });
}

/** A WebSocket to the daemon as an LSP-framed byte stream. */
export class RemoteStream extends Duplex {
  private readonly splitter = new FrameSplitter(MAX_FRAME_BYTES);
  /** Why the daemon closed the connection, for people (e.g. "token revoked"). */
  closeReason: string | undefined;

  constructor(private readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer) => {
      if (!this.push(Buffer.concat([Buffer.from(frameHeader(data.length), 'ascii'), data]))) ws.pause();
    });
    ws.on('close', (code, reason) => {
      this.closeReason = describeClose(code, reason.toString('utf8'));
      // What came before the close is read first; then the stream is done both ways.
      this.once('end', () => this.destroy());
      this.push(null);
    });
    ws.on('error', () => undefined); // surfaced as the close
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.splitter.push(chunk);
    const bodies: Uint8Array[] = [];
    try {
      for (let body = this.splitter.next(); body; body = this.splitter.next()) bodies.push(body);
    } catch (error) {
      if (!(error instanceof FrameError)) return done(error as Error);
      // What the daemon answers on its socket: the error, then the end of the connection.
      this.answerBroken(error);
      return done();
    }
    if (bodies.length === 0) return done();
    // Exact bytes (binary): the daemon judges their UTF-8 and JSON as on its socket.
    bodies.forEach((body, i) => this.ws.send(body, { binary: true }, i === bodies.length - 1 ? (error) => done(error ?? null) : undefined));
  }

  override _final(done: (error?: Error | null) => void): void {
    this.ws.close(1000);
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    done(error);
  }

  private answerBroken(error: FrameError): void {
    const reply = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: frameProblemCode(error.kind), message: error.message } });
    this.push(Buffer.from(frameHeader(Buffer.byteLength(reply)) + reply, 'utf8'));
    this.ws.close(1000);
  }
}

function describeClose(code: number, reason: string): string {
  if (code === CLOSE_TOKEN_ENDED) return `the daemon ended the connection: ${reason || 'its token was revoked or expired'}`;
  if (code === 1009) return `the daemon closed the connection: a message exceeded ${MAX_FRAME_BYTES} bytes (code ${ErrorCode.MessageTooLarge})`;
  if (code === 1001) return `the daemon closed the connection: ${reason || 'it is going away'}`;
  return `the connection to the daemon closed (${code}${reason ? `: ${reason}` : ''})`;
}
