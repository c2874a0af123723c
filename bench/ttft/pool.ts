import { DaemonStatus, SessionArchive } from '../../protocol/index.js';
import { startDaemon } from '../../test/support/daemon.js';
import { SANDBOX_RUNS, printFigure, quantile, round, stats, p50p95, inRotation } from './common.js';
import { Driver, Scratch, stopDaemon } from './driver.js';

const POOL = 4;

/**
 * 2b. ttft.sandbox.pool - the first prompt of a fresh session on a daemon with a warm sandbox
 * pool and real sandboxes: lazy (no sandbox in a turn without tools) and eager (a pooled
 * sandbox bound once the first model call has streamed its first output, and the pool
 * refilling, while the call streams),
 * against a daemon without a pool on sessions that never provision one. Runs interleave.
 */
export async function benchSandboxPool(plain: Driver, scratch: Scratch, modelEnv: Record<string, string>): Promise<void> {
  const pooled = await startDaemon({ env: { ...modelEnv, AGENTD_SANDBOX_POOL: String(POOL) } });
  try {
    const driver = new Driver(await pooled.client({ name: 'bench-sandbox-pool' }));
    const perms = { permissions: { default: 'allow' as const } };
    const samples = { lazy: [] as number[], eager: [] as number[], none: [] as number[] };
    const eagerReady: number[] = [];
    const poolState = async () => (await driver.client.request(DaemonStatus, {})).sandboxPool;
    const runOne = async (mode: 'lazy' | 'eager' | 'none', i: number, record: boolean) => {
      const on = mode === 'none' ? plain : driver;
      const t0 = performance.now();
      const sessionId = await on.create({ workspace: scratch.workspace(), ...perms, ...(mode === 'eager' ? { sandbox: { eager: true } } : {}) });
      const r = await on.turn(sessionId, `Say something short (${i}).`);
      if (mode === 'eager') {
        const ready = await on.waitProvisioned(sessionId);
        if (record) eagerReady.push(ready - t0);
        await on.client.request(SessionArchive, { sessionId }); // its sandbox goes; the pool refills in the background
      }
      if (record) samples[mode].push(r.ttft);
    };
    const state = await poolState();
    if (state?.disabled) throw new Error(`no pool: ${state.disabled}`);
    for (const mode of ['none', 'lazy', 'eager'] as const) await runOne(mode, -1, false);
    await inRotation(SANDBOX_RUNS, ['lazy', 'eager', 'none'] as const, (mode, i) => runOne(mode, i, true));
    const [l, e, n] = [stats(samples.lazy), stats(samples.eager), stats(samples.none)];
    printFigure({
      bench: 'ttft.sandbox.pool',
      unit: 'ms',
      pool: POOL,
      runs: SANDBOX_RUNS,
      ...p50p95('lazy', l),
      ...p50p95('eager', e),
      baseline: 'first prompt of a fresh session on a daemon without a pool, no sandbox',
      ...p50p95('noSandbox', n),
      lazyToNoSandboxP95: round(l.p95 / n.p95),
      eagerToNoSandboxP95: round(e.p95 / n.p95),
      eagerSandboxReadyAfterCreateP50: round(quantile(eagerReady, 0.5)),
      poolAfter: await poolState(),
      note: 'eager sessions take a pooled sandbox from session/create on, once their first model call has streamed its first output, and are archived after their turn, so the pool refills while the next runs stream',
      target: 'lazy and eager p95 <= 1.1x no-sandbox p95',
    });
  } finally {
    await stopDaemon(pooled);
  }
}
