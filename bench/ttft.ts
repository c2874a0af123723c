/**
 * Time-to-first-token figures for the harness, one JSON line each, every one beside a
 * baseline measured in the same run and against the same model emulator (one
 * Messages-API emulator process for the whole bench):
 *
 * Modules under bench/ttft/: common (figures, helpers), children (the emulator and
 * probe child processes), driver (sessions through the daemon), overhead (figures 1
 * and 2), forwarder (figure 1's floor), wake (3), load (4).
 *
 * 1. ttft.overhead   - first text delta through the daemon (session/prompt sent ->
 *                      first session/delta on a subscribed client) vs the SDK called
 *                      directly with the byte-identical request body the daemon sent,
 *                      and vs a minimal forwarder process on the same transport and SDK
 *                      (the two process hops alone: the floor of this design).
 * 1b. ttft.run_turn - a turn with a tool call: time beyond both model calls (made again
 *                      directly with the SDK on the same bodies) and the tool's own time,
 *                      and the durable writes per turn.
 * 2. ttft.sandbox    - first prompt of a fresh session with sandbox start-up slowed to
 *                      500 ms, lazy vs eager, against the no-delay daemon.
 *    ttft.sandbox.pool - the same with real sandboxes from a warm pool that refills
 *                      while the first prompts stream (bench/ttft/pool.ts).
 * 3. wake.10k        - reading and folding a 10,000-event session log in-process (what a
 *                      woken runner does before its first action) vs reading it only, and
 *                      vs the same fold with every event schema-checked;
 *    wake.100k       - a 100,000-event session woken from the checkpoint its runner would
 *                      keep vs a 4-event session, vs a full fold; heap kept vs context;
 *    wake.100k.daemon - a daemon restart that wakes it, vs waking a 4-event session.
 * 4. ttft.load       - 100 sessions running turns concurrently: turns/s, p95 TTFT vs the
 *                      single-session figure, daemon RSS, daemon event-loop delay.
 * Also harness.prompt_right_after_turn_end: prompts sent the moment turn.completed
 * arrives that the harness never starts (it must be 0: a race the bench once found),
 * vs prompts sent once the session is idle.
 *
 * The host's load average is printed with every figure: on a shared machine the
 * absolute numbers move with it, the same-run ratios much less.
 * The emulator and the event-loop probe run in child processes of this same script
 * (`--emulator`, `--probe`, `--forwarder`), so none shares an event loop with what it measures.
 */
import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { startDaemon, type TestDaemon } from '../test/support/daemon.js';
import { API_KEY } from './ttft/common.js';
import { EmulatorHandle, emulatorChild, probeChild } from './ttft/children.js';
import { Driver, Scratch, stopDaemon } from './ttft/driver.js';
import { benchLostWakeups, benchOverhead, benchRunTurn, benchSandbox } from './ttft/overhead.js';
import { benchSandboxPool } from './ttft/pool.js';
import { benchWake } from './ttft/wake.js';
import { benchLoad } from './ttft/load.js';
import { forwarderChild } from './ttft/forwarder.js';

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const scratch = new Scratch();
  const emu = await EmulatorHandle.start();
  const modelEnv = { ANTHROPIC_BASE_URL: emu.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '50' };
  const only = process.env.TTFT_ONLY?.split(',');
  const want = (name: string) => !only || only.includes(name);
  let daemon: TestDaemon | undefined;
  try {
    if (want('overhead') || want('run') || want('sandbox') || want('pool') || want('lost')) {
      daemon = await startDaemon({ env: modelEnv });
      const driver = new Driver(await daemon.client({ name: 'bench-ttft' }));
      if (want('overhead')) await benchOverhead(emu, driver, scratch);
      if (want('run')) await benchRunTurn(emu, driver, scratch);
      if (want('sandbox')) await benchSandbox(driver, scratch, modelEnv);
      if (want('pool')) await benchSandboxPool(driver, scratch, modelEnv);
      if (want('lost')) await benchLostWakeups(driver, scratch);
      await stopDaemon(daemon);
      daemon = undefined;
    }
    if (want('wake')) await benchWake(emu, modelEnv, scratch);
    if (want('load')) await benchLoad(emu, modelEnv, scratch);
    const errors = await emu.call<string[]>('errors');
    if (errors.length) process.stderr.write(`emulator errors: ${errors.slice(0, 3).join('; ')}\n`);
  } finally {
    if (daemon) await stopDaemon(daemon);
    await emu.close();
    rmSync(scratch.dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const [mode, a, b] = process.argv.slice(2);
  const run = mode === '--emulator' ? emulatorChild() : mode === '--probe' ? probeChild(a!) : mode === '--forwarder' ? forwarderChild(a!, b!) : main();
  run.catch((error) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exit(1);
  });
}
