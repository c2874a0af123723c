import { fileLogger } from './logger.js';
import { openStore } from './store.js';
import { dataPaths } from './paths.js';
import { startDaemon, StartError } from './server.js';
import { ConfigError, loadDaemonConfig, type DaemonConfig } from './config.js';
import { SandboxPolicy } from './containment.js';
import type { DataPaths } from './paths.js';
import { createLocalProvider } from '../sandbox/provider.js';
import type { SandboxProvider } from '../sandbox/types.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The web client's built files (esbuild puts them beside the compiled clients; the daemon only reads them). */
function webRoot(): string | undefined {
  const dir = fileURLToPath(new URL('../clients/web/', import.meta.url));
  return existsSync(`${dir}index.html`) ? dir : undefined;
}

/**
 * Local sandboxes, with a warm pool of `sandbox.pool` shaped as most sessions' (the data dir
 * hidden, the daemon's limits); for benchmarks only, AGENTD_BENCH_SANDBOX_DELAY_MS slows
 * each provision by that much, to compare lazy and eager provisioning against a slow start.
 */
function sandboxProvider(toolUmask: number, config: DaemonConfig, paths: DataPaths): SandboxProvider {
  const { hide, limits } = new SandboxPolicy(config, paths).specFor(undefined);
  const provider = createLocalProvider({ toolUmask, pool: { size: config.sandboxPool, hide: hide ?? [], ...(limits ? { limits } : {}) } });
  const delayMs = Number(process.env.AGENTD_BENCH_SANDBOX_DELAY_MS ?? 0);
  if (!(delayMs > 0)) return provider;
  return { ...provider, provision: async (spec) => (await new Promise((r) => setTimeout(r, delayMs)), provider.provision(spec)) };
}

/**
 * `agentd daemon`: runs in the foreground until SIGTERM/SIGINT or daemon/stop, then
 * exits 0. daemon/stop (`agentd stop`) lets running model and tool calls reach a durable
 * point first; a signal cuts them off at once (they resume when the daemon next starts).
 * Diagnostics go to daemon.log and stderr, never stdout.
 */
export async function run(argv: string[], version: string): Promise<number> {
  // Everything the daemon creates (LevelDB's files among them, which take no mode) is
  // owner-only whatever the umask it was started with; tools get the user's umask back.
  const userUmask = process.umask(0o077);
  const paths = dataPaths();
  const logger = fileLogger(paths.logFile, process.env.AGENTD_LOG_LEVEL === 'debug' ? 'debug' : 'info');
  let running;
  let sandboxes: SandboxProvider | undefined;
  try {
    const config = loadDaemonConfig(paths.config, process.env, argv);
    sandboxes = sandboxProvider(userUmask, config, paths);
    running = await startDaemon({
      paths,
      version,
      logger,
      config,
      openLog: (dir, daemonId) => openStore(dir, daemonId, logger),
      sandboxes,
      webRoot: webRoot(),
    });
  } catch (error) {
    const message = error instanceof StartError || error instanceof ConfigError ? error.message : `daemon failed to start: ${(error as Error).stack ?? error}`;
    logger.log('error', message);
    process.stderr.write(`agentd: ${message}\n`);
    await sandboxes?.close?.().catch(() => undefined); // the pool's sandboxes, started already
    return 1;
  }
  const { stop, stopped } = running;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal));
  process.on('SIGHUP', () => undefined);
  process.on('unhandledRejection', (reason) => logger.log('error', 'unhandled rejection', { reason: String((reason as Error)?.stack ?? reason) }));
  process.stderr.write(`agentd: daemon ready (pid ${process.pid}) on ${paths.socket}${running.listenUrl ? ` and ${running.listenUrl}` : ''}\n`);
  await stopped;
  // Stopped means gone: a handle left open somewhere must not keep a stopped daemon alive.
  setTimeout(() => {
    logger.log('warn', 'exiting with handles still open after the stop');
    process.exit(0);
  }, 2000).unref();
  return 0;
}
