/** Several real daemons (child processes, each with its own data dir) sharing one PostgreSQL session log. */
import { readLog, startDaemon, tempHome, type TestDaemon } from './daemon.js';
import { until } from './until.js';
import { API_KEY } from './agent.js';
import { startModelEmulator, type ModelEmulator } from '../../clients/cli/demo/model-emulator.js';
import { freshDatabase } from './postgres.js';
import { selfSignedCert, startListeningDaemon } from './remote.js';

export interface Cluster {
  emulator: ModelEmulator;
  /** The shared log's URL (AGENTD_LOG of every daemon). */
  url: string;
  daemons: TestDaemon[];
  env: Record<string, string>;
  /** Starts one more daemon on the same database (env overrides, e.g. another AGENTD_LOG route to it). */
  add(env?: Record<string, string>): Promise<TestDaemon>;
  dispose(): Promise<void>;
}

/** `listen`: each daemon also listens on wss:// (one self-signed certificate for all), as ListeningDaemons. */
export async function startCluster(size: number, options: { leaseMs?: number; listen?: boolean } = {}): Promise<Cluster> {
  const emulator = await startModelEmulator({ apiKey: API_KEY });
  const url = await freshDatabase('agentd_cluster');
  const env = {
    ANTHROPIC_BASE_URL: emulator.url,
    ANTHROPIC_API_KEY: API_KEY,
    AGENTD_RETRY_BASE_MS: '20',
    AGENTD_LOG: url,
    AGENTD_LEASE_MS: String(options.leaseMs ?? 1500),
  };
  const cert = options.listen ? selfSignedCert() : undefined;
  const cluster: Cluster = {
    emulator,
    url,
    env,
    daemons: [],
    async add(overrides = {}) {
      const layout = tempHome('agentd-cluster-');
      const daemon = cert
        ? await startListeningDaemon({ layout, cert, env: { ...env, ...overrides } })
        : await startDaemon({ layout, env: { ...env, ...overrides } });
      cluster.daemons.push(daemon);
      return daemon;
    },
    async dispose() {
      for (const daemon of cluster.daemons) {
        if (daemon.proc.signalCode === null && daemon.proc.exitCode === null) daemon.proc.kill('SIGCONT');
      }
      await Promise.all(cluster.daemons.map((d) => d.dispose()));
      await emulator.close();
    },
  };
  // One after the other: each creates or checks the schema under an advisory lock anyway.
  for (let i = 0; i < size; i++) await cluster.add();
  return cluster;
}

/** Waits until `test` holds for what `daemon`'s log file says. */
export async function waitForDaemonLog(daemon: TestDaemon, test: RegExp, timeoutMs = 20_000): Promise<string> {
  return until(() => readLog(daemon.layout).split('\n').find((l) => test.test(l)), `a daemon log line matching ${test}`, timeoutMs).catch((error: Error) =>
    Promise.reject(new Error(`${error.message}: ${readLog(daemon.layout).slice(-2000)}`)),
  );
}
