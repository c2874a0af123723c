import {
  CancellationSenderStrategy,
  createMessageConnection,
  ResponseError,
  type CancellationToken,
  type Logger as RpcLogger,
} from 'vscode-jsonrpc/node';
import { AgentdError, ClientRequests, ErrorCode, frameProblemCode, type ClientMethod } from '../../protocol/index.js';
import { invalidParams, toResponseError } from '../errors.js';
import type { KeyedQueue } from '../keyed-queue.js';
import type { Logger } from '../logger.js';
import type { Redactor } from '../vault/redact.js';
import { GatedMessageReader, TransportMessageWriter, type FrameProblem } from './framing.js';
import { ConnectionGuard } from './guard.js';
import { CONNECTION_LIMITS } from './limits.js';
import { Peer } from './peer.js';
import type { Transport } from './transport.js';
import { OWNER, checkAccess, type Access } from '../access.js';

/**
 * One handler per client request, each given the request's params (parsed by the method's
 * schema) and a context: daemon/handlers has the table, this module only dispatches to it.
 */
export type HandlersFor<C> = { readonly [M in ClientMethod]: (params: never, ctx: C) => Promise<unknown> };

/** What the server keeps across connections. */
export interface ServeState<C> {
  handlers: HandlersFor<C>;
  /** The context a handler gets for one request on `peer`. */
  context(peer: Peer, token: CancellationToken): C;
  logger: Logger;
  /** Whatever an error echoes back is redacted with this. */
  redactor(): Promise<Redactor>;
  /** The connection ended or half-closed: its subscriptions go. */
  connectionEnded(peer: Peer): void;
  peers: Set<Peer>;
  queue: KeyedQueue;
  /** Requests being handled; a stopping daemon waits for them. */
  inFlight: Set<Promise<unknown>>;
  stopping: boolean;
  /** Told of every request and closed connection: work the idle collector waits out. */
  activity: () => void;
}


let nextPeerId = 1;

/**
 * Serves JSON-RPC on one accepted connection until it closes: the unix socket (the
 * owner) or a WebSocket (with its token's access). Every check and limit is the same.
 */
export function serveConnection<C>(transport: Transport, state: ServeState<C>, access: Access = OWNER): Peer {
  const { logger } = state;
  const { socket } = transport;
  const connId = nextPeerId++;
  const guard = new ConnectionGuard(socket, CONNECTION_LIMITS, logger, connId);
  const writer = new TransportMessageWriter(transport, guard.written);
  guard.attach(writer);
  const reader = new GatedMessageReader(transport, (problem) => onProblem(problem), guard.gate);
  guard.onRoom = () => reader.resume();
  const rpcLogger: RpcLogger = {
    error: (message) => logger.log('error', message, { conn: connId }),
    warn: (message) => logger.log('warn', message, { conn: connId }),
    info: (message) => logger.log('debug', message, { conn: connId }),
    log: (message) => logger.log('debug', message, { conn: connId }),
  };
  const rpc = createMessageConnection(reader, writer, rpcLogger, {
    // Cancellation is the guard's: `$/cancelRequest` never reaches the library.
    cancellationStrategy: { receiver: { createCancellationTokenSource: (id) => guard.cancellationFor(id) }, sender: CancellationSenderStrategy.Message },
  });
  const peer = new Peer(connId, rpc, () => socket.writableLength, access);
  state.peers.add(peer);

  function onProblem(problem: FrameProblem): void {
    guard.problem('bad frame from client', { kind: problem.kind, detail: problem.message });
    guard.answer(null, frameProblemCode(problem.kind), problem.message);
    if (problem.fatal) {
      // The stream is out of sync (or the peer is abusive): answer, then hang up.
      setImmediate(() => transport.end());
      setTimeout(() => socket.destroy(), 1000).unref();
    }
  }

  const mine = new Set<Promise<unknown>>();
  rpc.onRequest((method, params, token) => {
    state.activity();
    const work = dispatch(method, params, token, peer, state).catch(async (error: unknown) => {
      // Whatever an error echoes back, no vault value leaves in it.
      const response = toResponseError(error);
      const redactor = await state.redactor().catch(() => undefined);
      throw redactor && !redactor.empty ? new ResponseError(response.code, redactor.text(response.message), redactor.value(response.data)) : response;
    });
    state.inFlight.add(work);
    mine.add(work);
    void work
      .catch(() => undefined)
      .finally(() => {
        state.inFlight.delete(work);
        mine.delete(work);
      });
    return work;
  });
  // A client that half-closes (`printf ... | agentd stdio`) still gets its answers.
  transport.onPeerEnd(() => {
    state.connectionEnded(peer);
    void Promise.allSettled([...mine]).then(() => setImmediate(() => transport.end()));
  });
  rpc.onError(([error]) => logger.log('debug', 'connection error', { conn: peer.id, error: error.message }));

  socket.on('error', (error) => logger.log('debug', 'socket error', { conn: peer.id, error: error.message }));
  socket.on('close', () => {
    peer.closed = true;
    guard.dispose();
    state.activity();
    state.connectionEnded(peer);
    state.peers.delete(peer);
    rpc.dispose();
    logger.log('debug', 'connection closed', { conn: peer.id });
  });
  rpc.listen();
  return peer;
}

async function dispatch<C>(method: string, raw: unknown, token: CancellationToken, peer: Peer, state: ServeState<C>): Promise<unknown> {
  if (peer.state === 'new' && method !== 'initialize') {
    throw new ResponseError(ErrorCode.ServerNotInitialized, `not initialized: send initialize before ${method}`);
  }
  if (peer.state === 'shutdown') {
    throw new AgentdError(ErrorCode.ConnectionShutDown, `this connection sent shutdown; ${method} is refused, close it`);
  }
  if (!Object.hasOwn(state.handlers, method)) throw new ResponseError(ErrorCode.MethodNotFound, `unknown method ${method}`);
  const name = method as ClientMethod;
  if (state.stopping && name !== 'daemon/status') {
    throw new AgentdError(ErrorCode.DaemonStopping, `the daemon is stopping; ${method} was not run`);
  }
  // Before the params are judged: a token that may not call this learns nothing more.
  checkAccess(peer.access, name, raw);
  const def = ClientRequests[name];
  const parsed = def.params.safeParse(raw ?? undefined);
  if (!parsed.success) throw invalidParams(method, parsed.error);
  // The params were parsed by this method's own schema: they are what its handler takes.
  const handler = state.handlers[name] as (params: unknown, ctx: C) => Promise<unknown>;
  const run = () => handler(parsed.data, state.context(peer, token));
  const result =
    def.scope === 'session' ? await state.queue.run((parsed.data as { sessionId: string }).sessionId, run) : await run();
  if (token.isCancellationRequested) throw new ResponseError(ErrorCode.RequestCancelled, `${method} was cancelled`);
  return result;
}
