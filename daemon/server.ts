import { accessSync, chmodSync, constants, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tightenTree } from './file-modes.js';
import { IDLE_GC_MS, IdleCollector } from './idle-gc.js';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { KeyedQueue } from './keyed-queue.js';
import { LatencyWindow } from './latency.js';
import type { Logger } from './logger.js';
import { timedLog } from './log/delegate.js';
import { isLevelLocked } from './log/level-log.js';
import type { SessionLog } from './log/session-log.js';
import { StoreConfigError, type OpenedLog } from './store.js';
import { wireCluster } from './cluster/wire.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { DataPaths } from './paths.js';
import { handlers, type Daemon, type RequestContext } from './handlers/index.js';
import { MAX_SUBSCRIPTIONS_PER_CONNECTION, SUBSCRIPTION_BATCH, SUBSCRIPTION_BATCH_BYTES, SUBSCRIPTION_MAX_PENDING, SUBSCRIPTION_MAX_PENDING_BYTES } from './rpc/limits.js';
import type { Peer } from './rpc/peer.js';
import { serveConnection, type ServeState } from './rpc/serve.js';
import { streamTransport } from './rpc/transport.js';
import { TokenService } from './tokens.js';
import { startRemoteListener, type RemoteListener } from './remote/listener.js';
import { readiness } from './remote/readiness.js';
import { SessionService } from './sessions.js';
import { SubscriptionHub } from './subscriptions.js';
import { Vault } from './vault/vault.js';
import { Harness, type HarnessSettings } from './harness/index.js';
import { DEFAULT_RETRY } from './harness/model.js';
import { openQuestions, PermissionBroker } from './permissions.js';
import { authHeader, CredentialProxy } from './proxy/proxy.js';
import { defaultNetworkPolicy, SessionNetworks } from './network.js';
import type { SandboxProvider } from '../sandbox/types.js';
import type { DaemonConfig } from './config.js';
import { newSessionId } from './ids.js';
import { SandboxPolicy } from './containment.js';
import { DaemonStoppingNotification } from '../protocol/index.js';
import { clearStopMarker, staleStart, writeStopMarker } from './stop-marker.js';
import { StartError } from './start-error.js';

export interface DaemonOptions {
  paths: DataPaths;
  version: string;
  logger: Logger;
  /** Opens the session log (its directory: the data dir's db/) as this daemon. */
  openLog: (dir: string, daemonId: string) => Promise<OpenedLog>;
  /** Where sandboxes come from. */
  sandboxes: SandboxProvider;
  /** The isolation floor, sandbox limits, fork size limit and network listener (daemon/config.ts). */
  config: DaemonConfig;
  /** The web client's built files, served at / by the network listener. */
  webRoot?: string;
}

function intFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isSafeInteger(value) && value >= 0 ? value : fallback;
}

/** Harness settings: the model's and the prices from the configuration; the environment may override the rest (documented in the README). */
function harnessSettings(config: DaemonConfig): HarnessSettings {
  return {
    prices: config.prices,
    defaultModel: config.defaultModel,
    ...(config.modelBaseUrl ? { baseUrl: config.modelBaseUrl } : {}),
    maxTokens: intFromEnv('AGENTD_MAX_TOKENS', 8192),
    subAgents: process.env.AGENTD_SUBAGENTS === 'elsewhere' ? 'elsewhere' : 'here',
    contextBudget: intFromEnv('AGENTD_CONTEXT_BUDGET', 150_000),
    retry: {
      maxRetries: intFromEnv('AGENTD_RETRY_MAX', DEFAULT_RETRY.maxRetries),
      baseDelayMs: intFromEnv('AGENTD_RETRY_BASE_MS', DEFAULT_RETRY.baseDelayMs),
      maxDelayMs: DEFAULT_RETRY.maxDelayMs,
    },
  };
}

export interface RunningDaemon {
  daemon: Daemon;
  /** Settles when the daemon has stopped; resolves with the reason. */
  stopped: Promise<string>;
  /**
   * Stops. `onPurpose` (daemon/stop): clients are told and the stop marker keeps them
   * from starting the daemon again; runners get `drainMs` to reach a durable point.
   */
  stop(reason: string, options?: { onPurpose?: boolean; drainMs?: number }): Promise<void>;
  /** The network listener's URL, when it listens. */
  listenUrl?: string;
}

export { StartError };

/** Starting fails fast and clearly: unusable data dir, another daemon, a socket in use. */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const { paths, logger } = options;
  await prepareDataDir(paths, logger);
  const daemonId = `${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const store = await openExclusive(options, paths, daemonId);
  const { log, leases, bus } = store;
  // Only now, holding the lock: a stop that came after a client asked for this daemon wins.
  const stale = staleStart(paths.stopMarker, process.env);
  delete process.env.AGENTD_AUTOSTART_AT;
  if (stale) {
    await log.close();
    throw new StartError(`not starting: the daemon was stopped on purpose (${stale.reason}) after a client asked to start it; start it with \`agentd start\``);
  }
  const appendLatency = new LatencyWindow();
  const idle = new IdleCollector(IDLE_GC_MS, () => logger.log('info', 'idle: freed malloc memory stays with glibc here (the trim needs glibc and a koffi binary for this platform)'));
  // Every durable append is timed for daemon/status, and counts as work for the idle collector.
  const timed = timedLog(log, (ms) => {
    appendLatency.add(ms);
    idle.touch();
  });
  const peers = new Set<Peer>();
  let stopRequested: (reason: string, drainMs: number) => void = () => undefined;
  const hub = new SubscriptionHub(timed, logger, {
    maxPending: SUBSCRIPTION_MAX_PENDING,
    maxPendingBytes: SUBSCRIPTION_MAX_PENDING_BYTES,
    batchSize: SUBSCRIPTION_BATCH,
    maxBatchBytes: SUBSCRIPTION_BATCH_BYTES,
    perConnection: MAX_SUBSCRIPTIONS_PER_CONNECTION,
  });
  const vault = new Vault(paths.vaultFile, paths.vaultKey, (redactor) => (logger.redact = (line) => redactor.text(line)));
  await vault.redactor().then((redactor) => {
    logger.redact = (line) => redactor.text(line);
    if (redactor.tooShort.length > 0) logger.log('warn', 'credentials shorter than 6 characters cannot be redacted; replace them', { names: redactor.tooShort });
  });
  const permissions = new PermissionBroker(() => peers, logger);
  // Revocations reach the other daemons' connections through the bus (a message holds at most 100 ids).
  const tokens = new TokenService(log.tokens, (ids) => {
    for (let at = 0; at < ids.length; at += 100) bus?.send({ kind: 'tokens.revoked', ids: ids.slice(at, at + 100) });
  });
  bus?.on('tokens.revoked', (message) => tokens.revoked(message.ids));
  // The model's key: the daemon's own environment (read when it started), else the vault.
  const modelKey = async (): Promise<{ source: 'environment' | 'vault' | 'missing'; value?: string }> => {
    if (process.env.ANTHROPIC_API_KEY) return { source: 'environment', value: process.env.ANTHROPIC_API_KEY };
    const stored = await vault.reveal('ANTHROPIC_API_KEY').then((e) => e.value, () => undefined);
    return stored ? { source: 'vault', value: stored } : { source: 'missing' };
  };
  const proxy = new CredentialProxy(vault, logger, paths.proxies);
  const queue = new KeyedQueue();
  const policy = new SandboxPolicy(options.config, paths);
  const settings = harnessSettings(options.config);
  if (settings.subAgents === 'elsewhere' && !leases) {
    await log.close();
    throw new StartError('AGENTD_SUBAGENTS=elsewhere needs a session log shared with other daemons (AGENTD_LOG=postgres://...): no daemon would run the sub-agents');
  }
  const networkDefault = defaultNetworkPolicy(options.config.networkPresets);
  const sessions = new SessionService(timed, paths.workspaces, policy, { prices: settings.prices, defaultModel: settings.defaultModel }, leases, networkDefault);
  // Filled in below: the harness knows which tool call runs when a connection is made.
  let running: (sessionId: string) => { turnId: string; toolUseId?: string } | undefined = () => undefined;
  const networks = new SessionNetworks({
    writer: (sessionId): SessionLog => harness.writerLog(sessionId),
    logger,
    find: (sessionId) => sessions.find(sessionId),
    ask: (question, signal) => permissions.ask(question, signal),
    running: (sessionId) => running(sessionId),
    fallback: networkDefault,
    serialize: (sessionId, task) => queue.run(sessionId, task),
  });
  const harness = new Harness({
    serialize: (sessionId, task) => queue.run(sessionId, task),
    log: timed,
    logger,
    provider: policy.police(options.sandboxes),
    sandboxSpec: (request) => policy.specFor(request),
    apiKey: async () => (await modelKey()).value,
    delta: (sessionId, turnId, kind, index, text) => {
      hub.broadcastDelta(sessionId, turnId, kind, index, text);
      bus?.sendDelta(sessionId, turnId, kind, index, text);
    },
    askPermission: (question, signal) => permissions.ask(question, signal),
    openNetworkQuestions: async (sessionId) => (await openQuestions(timed, sessionId)).filter((q) => q.kind === 'network').map((q) => q.toolUseId),
    session: (sessionId) => sessions.find(sessionId),
    remoteAuthorization: async (name, url) => {
      const credential = await vault.reveal(name).catch(() => undefined);
      return credential && authHeader(credential.binding ?? { kind: 'mcp', url }, credential.value)[1];
    },
    openProxy: (sessionId, credentials) => proxy.open(sessionId, credentials, networks.for(sessionId)),
    redactor: () => vault.redactor(),
    settings,
    daemonId,
    newSessionId: () => newSessionId(),
    createChild: (spec) => sessions.createChild(spec),
    interruptElsewhere: (sessionId, turnId) => bus?.send({ kind: 'interrupt', sessionId, turnId }),
    ...(leases ? { leases } : {}),
  });
  running = (sessionId) => harness.running(sessionId);
  const daemon: Daemon = {
    id: daemonId,
    store: { backend: store.backend, location: store.location },
    version: options.version,
    startedAt: Date.now(),
    paths,
    log: timed,
    sessions,
    hub,
    vault,
    harness,
    permissions,
    tokens,
    logger,
    appendLatency,
    peers,
    modelApiKey: async () => (await modelKey()).source,
    sandboxPool: () => options.sandboxes.pool?.(),
    requestStop: (reason, drainMs) => stopRequested(reason, drainMs),
    ...(bus ? { cluster: bus } : {}),
  };
  const unwireCluster = bus ? wireCluster(bus, { log: timed, harness, hub, permissions }) : () => undefined;
  const state: ServeState<RequestContext> = {
    handlers,
    context: (peer, token) => ({ daemon, peer, token }),
    logger,
    redactor: () => vault.redactor(),
    connectionEnded: (peer) => hub.closeAll(peer),
    peers,
    queue,
    inFlight: new Set(),
    stopping: false,
    activity: () => idle.touch(),
  };
  const sockets = new Set<Socket>();
  let server: Server;
  try {
    server = await listen(paths.socket, (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      serveConnection(streamTransport(socket), state);
    });
  } catch (error) {
    await log.close();
    throw error;
  }
  let remote: RemoteListener | undefined;
  if (options.config.listen) {
    try {
      remote = await startRemoteListener({
        config: options.config.listen,
        state,
        tokens,
        logger,
        webRoot: options.webRoot,
        readiness: () => readiness(daemon, state),
      });
    } catch (error) {
      server.close();
      rmSync(paths.socket, { force: true });
      await log.close();
      throw error;
    }
  }
  writeFileSync(paths.pidFile, `${process.pid}\n`, { mode: 0o600 });
  clearStopMarker(paths.stopMarker);
  logger.log('info', 'daemon ready', {
    pid: process.pid, socket: paths.socket, version: options.version, daemonId, log: store.location, ...(remote ? { listen: remote.url } : {}),
    isolationFloor: options.config.isolationFloor, floorFrom: options.config.floorSource, sandboxLimits: options.config.sandboxLimits,
  });
  // With leases the harness takes over unfinished sessions itself, as they become free.
  if (!leases) void wakeUnfinished(daemon);

  let resolveStopped!: (reason: string) => void;
  const stopped = new Promise<string>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  const stop = (reason: string, { onPurpose = false, drainMs = 0 } = {}): Promise<void> => {
    stopping ??= (async () => {
      logger.log('info', 'daemon stopping', { reason, inFlight: state.inFlight.size, onPurpose, drainMs, runningTurns: harness.busyCount });
      // New requests are refused from now on (DaemonStopping); the socket stays open so
      // that clients get that answer rather than a refused connection while we drain.
      state.stopping = true;
      if (onPurpose) {
        // The marker first: a client that reacts to the notice must already find it.
        writeStopMarker(paths.stopMarker, reason);
        const notice = { reason, drainMs, runningTurns: harness.busyCount };
        for (const peer of peers) if (peer.state === 'ready') void peer.notify(DaemonStoppingNotification, notice).catch(() => undefined);
      }
      await Promise.all([
        // In-flight requests (appends among them) finish and are answered before the log closes.
        Promise.race([Promise.allSettled([...state.inFlight]), delay(10_000, undefined, { ref: false })]),
        // Runners get drainMs to reach a durable point, then stop without recording an
        // end, as in a crash: the next daemon wakes them.
        harness.stop(drainMs),
      ]);
      server.close();
      await remote?.close();
      idle.dispose();
      unwireCluster();
      await log.close();
      for (const peer of peers) daemon.hub.closeAll(peer);
      await delay(20, undefined, { ref: false }); // let the last replies reach the sockets
      for (const socket of sockets) socket.end();
      rmSync(paths.socket, { force: true });
      rmSync(paths.pidFile, { force: true });
      logger.log('info', 'daemon stopped', { reason });
      resolveStopped(reason);
    })();
    return stopping;
  };
  // Answer the daemon/stop request first, then stop.
  stopRequested = (reason, drainMs) => void setImmediate(() => void stop(reason, { onPurpose: true, drainMs }));
  return { daemon, stopped, stop, ...(remote ? { listenUrl: remote.url } : {}) };
}

/** After a restart (crash or not), every session whose log ends mid-turn carries on. */
async function wakeUnfinished(daemon: Daemon): Promise<void> {
  const unfinished = new Set(['queued', 'running', 'waiting']);
  try {
    for (let cursor: string | undefined; ; ) {
      const page = await daemon.log.list({ limit: 500, ...(cursor ? { cursor } : {}), filter: (m) => unfinished.has(String(m.status)) });
      for (const meta of page.sessions) {
        daemon.logger.log('info', 'waking session', { sessionId: meta.sessionId, status: meta.status });
        await daemon.harness.wake(meta.sessionId);
      }
      if (!page.cursor) return;
      cursor = page.cursor;
    }
  } catch (error) {
    daemon.logger.log('error', 'waking sessions failed', { error: String((error as Error)?.stack ?? error) });
  }
}

/**
 * The data dir holds the vault, the log and the sockets: it must be ours and closed to
 * everyone else. A dir that exists with wider modes (an older agentd, `umask 000`, a
 * hand-made dir) is tightened to 0700; one owned by another user is refused.
 */
async function prepareDataDir(paths: DataPaths, logger: Logger): Promise<void> {
  const { home } = paths;
  let info;
  try {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    accessSync(home, constants.W_OK | constants.X_OK);
    info = statSync(home);
  } catch (error) {
    throw new StartError(`data directory ${home} is not usable: ${(error as Error).message}; set AGENTD_HOME to a writable directory`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new StartError(`data directory ${home} belongs to uid ${info.uid}, not to this user (uid ${uid}); use a directory of your own as AGENTD_HOME`);
  }
  if ((info.mode & 0o077) !== 0) {
    try {
      chmodSync(home, 0o700);
    } catch (error) {
      throw new StartError(`data directory ${home} is open to other users (mode ${(info.mode & 0o777).toString(8)}) and cannot be tightened to 0700: ${(error as Error).message}`);
    }
    logger.log('warn', 'tightened the data directory to 0700', { home, was: (info.mode & 0o777).toString(8) });
  }
  // Files an older daemon made under a looser umask (forked workspaces were made owner-only when copied).
  let tightened: number;
  try {
    tightened = await tightenTree(home, new Set([paths.workspaces]));
  } catch (error) {
    throw new StartError(`cannot make the files in ${home} owner-only: ${(error as Error).message}`);
  }
  if (tightened > 0) logger.log('warn', 'made files in the data directory owner-only', { home, count: tightened });
}

/** LevelDB's lock is the one-daemon-per-data-dir lock: the OS frees it when a daemon dies. */
async function openExclusive(options: DaemonOptions, paths: DataPaths, daemonId: string): Promise<OpenedLog> {
  try {
    return await options.openLog(paths.db, daemonId);
  } catch (error) {
    if (isLevelLocked(error)) {
      const pid = readPid(paths.pidFile);
      throw new StartError(
        `another agentd daemon${pid ? ` (pid ${pid})` : ''} is already running for ${paths.home}; stop it with \`agentd stop\` or use another AGENTD_HOME`,
      );
    }
    if (error instanceof StoreConfigError) throw new StartError(error.message);
    throw new StartError(`cannot open the session log: ${(error as Error).message}`);
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Listens on the unix socket, mode 0600 from the first moment (umask), after removing
 * a stale socket that nobody answers on. We hold the data dir's lock, so a socket
 * that does answer belongs to something else entirely: refuse rather than steal it.
 */
async function listen(path: string, onSocket: Parameters<typeof createServer>[1]): Promise<Server> {
  if (socketExists(path)) {
    if (await answers(path)) throw new StartError(`${path} is in use by another process; remove it or use another AGENTD_HOME`);
    rmSync(path, { force: true });
  }
  const server = createServer({ allowHalfOpen: true }, onSocket);
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  chmodSync(path, 0o600);
  return server;
}

function socketExists(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

