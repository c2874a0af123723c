import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  DaemonStatus,
  SessionEvents,
} from '../../protocol/index.js';
import { startDaemon } from '../../test/support/daemon.js';
import Anthropic from '@anthropic-ai/sdk';
import { directCall } from './overhead.js';
import { API_KEY, LOAD_CONNECTIONS, LOAD_SECONDS, LOAD_SESSIONS, LOAD_TOOL_EVERY, cpuMs, descendants, mean, printFigure, quantile, round, rssBytes, sleep, stats, p50p95 } from './common.js';
import { ELD_PRELOAD, EmulatorHandle, ProbeHandle, eldSnapshot } from './children.js';
import { Driver, Scratch, stopDaemon } from './driver.js';
import { Forwarder } from './forwarder.js';

// ---------------------------------------------------------------- 4. many brains at once

const DIRECT_SECONDS = 10;

type Bodies = { text: Array<Record<string, unknown>>; tool: Array<Record<string, unknown>> };

/** Turns per second of LOAD_SESSIONS loops, each making its turns (the tool mix of the load) with `turn`, for DIRECT_SECONDS. */
async function loopsThroughput(bodies: Bodies, turn: (calls: Array<Record<string, unknown>>) => Promise<unknown>): Promise<number> {
  if (bodies.text.length === 0 || bodies.tool.length === 0) throw new Error('no bodies recorded for the baselines');
  let turns = 0;
  const deadline = performance.now() + DIRECT_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: LOAD_SESSIONS }, async (_, k) => {
      const calls = k % LOAD_TOOL_EVERY === 0 ? bodies.tool : bodies.text;
      while (performance.now() < deadline) {
        await turn(calls);
        if (performance.now() <= deadline) turns++;
      }
    }),
  );
  return round(turns / DIRECT_SECONDS, 1);
}

/** The loops calling the SDK directly, no daemon. */
async function directThroughput(emu: EmulatorHandle, bodies: Bodies): Promise<number> {
  const api = new Anthropic({ baseURL: emu.url, apiKey: API_KEY, maxRetries: 0 });
  return loopsThroughput(bodies, async (calls) => {
    for (const body of calls) await directCall(api, body);
  });
}

/** The same loops through the minimal forwarder (bench/ttft/forwarder.ts): the throughput floor of a process on the path. */
async function forwarderThroughput(emu: EmulatorHandle, bodies: Bodies, dir: string): Promise<number> {
  const forwarder = await Forwarder.start(emu.url, dir);
  try {
    return await loopsThroughput(bodies, (calls) => forwarder.turn(calls));
  } finally {
    forwarder.close();
  }
}

export async function benchLoad(emu: EmulatorHandle, modelEnv: Record<string, string>, scratch: Scratch): Promise<void> {
  const eldFile = join(scratch.dir, 'eld.json');
  const preload = join(scratch.dir, 'eld-preload.mjs');
  writeFileSync(preload, ELD_PRELOAD);
  const nodeOptions = [process.env.NODE_OPTIONS, `--import=${pathToFileURL(preload).href}`].filter(Boolean).join(' ');
  const daemon = await startDaemon({ env: { ...modelEnv, NODE_OPTIONS: nodeOptions, AGENTD_BENCH_ELD_FILE: eldFile } });
  const pid = daemon.proc.pid!;
  let probe: ProbeHandle | undefined;
  try {
    const drivers: Driver[] = [];
    for (let c = 0; c < LOAD_CONNECTIONS; c++) drivers.push(new Driver(await daemon.client({ name: `bench-load-${c}` })));
    const sessions: Array<{ driver: Driver; id: string; tool: boolean }> = [];
    for (let i = 0; i < LOAD_SESSIONS; i++) {
      const driver = drivers[i % LOAD_CONNECTIONS]!;
      const id = await driver.create({ workspace: scratch.workspace(), permissions: { default: 'allow' } });
      sessions.push({ driver, id, tool: i % LOAD_TOOL_EVERY === 0 });
    }
    const prompt = (tool: boolean, i: number) => (tool ? `tool: read hello.txt (${i})` : `Say something short (${i}).`);
    const failures: string[] = [];
    // Warm-up: one turn each, one session at a time (tool sessions provision their sandbox here).
    for (const s of sessions) await s.driver.turn(s.id, prompt(s.tool, 0));
    // Single-session baseline in the same daemon, the same 1-in-5 tool mix.
    const single: number[] = [];
    const singleTurnMs: number[] = [];
    // The bodies of one text turn and one tool turn (two calls), for the direct-SDK baseline.
    const bodies: { text: Array<Record<string, unknown>>; tool: Array<Record<string, unknown>> } = { text: [], tool: [] };
    for (let i = 0; i < 50; i++) {
      const s = sessions[i % LOAD_TOOL_EVERY === 0 ? 0 : 1]!;
      const before = await emu.count();
      const r = await s.driver.turn(s.id, prompt(s.tool, i));
      const made = (await emu.count()) - before;
      if (made === (s.tool ? 2 : 1)) bodies[s.tool ? 'tool' : 'text'] = await Promise.all(Array.from({ length: made }, (_, k) => emu.call<Record<string, unknown>>('body', before + k)));
      if (r.end !== 'turn.completed') failures.push(r.end);
      single.push(r.ttft);
      singleTurnMs.push(r.total);
    }
    probe = await ProbeHandle.start(daemon.layout.socket);
    await eldSnapshot(pid, eldFile); // reset
    await probe.take();
    await sleep(3000);
    const idleEld = await eldSnapshot(pid, eldFile);
    const idlePing = await probe.take();
    const idleRss = rssBytes(pid);

    let peakRss = idleRss;
    const rssSamples: number[] = [];
    const rssTimer = setInterval(() => {
      try {
        const rss = rssBytes(pid);
        rssSamples.push(rss);
        peakRss = Math.max(peakRss, rss);
      } catch {
        // The daemon is gone; the bench will say so.
      }
    }, 200);
    const ttfts: number[] = [];
    const toolTtfts: number[] = [];
    let completed = 0;
    // Control: the same histogram in this (bench client) process over the same window;
    // stalls seen here too come from the machine, not from the daemon.
    const control = monitorEventLoopDelay({ resolution: 5 });
    control.enable();
    const cpu0 = { daemon: cpuMs(pid), emulator: cpuMs(emu.pid), bench: process.cpuUsage() };
    const t0 = performance.now();
    const deadline = t0 + LOAD_SECONDS * 1000;
    await Promise.all(
      sessions.map(async (s, k) => {
        for (let i = 1; performance.now() < deadline; i++) {
          const r = await s.driver.turn(s.id, prompt(s.tool, i), 120_000);
          if (r.end !== 'turn.completed') failures.push(r.end);
          if (performance.now() <= deadline) {
            completed++;
            (s.tool ? toolTtfts : ttfts).push(r.ttft);
          }
          void k;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    control.disable();
    const direct = await directThroughput(emu, bodies);
    const forwarded = await forwarderThroughput(emu, bodies, scratch.dir);
    const controlMs = (ns: number) => round(Math.max(0, (ns - 5e6) / 1e6));
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cpuPct = (ms: number) => round((ms / (elapsed * 1000)) * 100, 0);
    const cpu = {
      daemonCpuPct: cpuPct(cpuMs(pid) - cpu0.daemon),
      emulatorCpuPct: cpuPct(cpuMs(emu.pid) - cpu0.emulator),
      benchClientsCpuPct: cpuPct((benchCpu.user + benchCpu.system) / 1000),
    };
    clearInterval(rssTimer);
    const loadEld = await eldSnapshot(pid, eldFile);
    const loadPing = await probe.take();
    const loadStatus = await drivers[0]!.client.request(DaemonStatus, {});
    // Where a loaded turn's time to first token goes, from the events' timestamps.
    const gaps = { userToStarted: [] as number[], startedToRequested: [] as number[] };
    for (const s of sessions.slice(0, 20)) {
      const { events } = await s.driver.client.request(SessionEvents, { sessionId: s.id, from: 0 });
      const byTurn = new Map<string, Record<string, number>>();
      for (const e of events) {
        const turnId = (e.data as { turnId?: string }).turnId;
        if (!turnId) continue;
        const t = byTurn.get(turnId) ?? byTurn.set(turnId, {}).get(turnId)!;
        t[e.type] ??= e.ts;
      }
      for (const t of byTurn.values()) {
        if (t['user.message'] === undefined || t['turn.started'] === undefined || t['model.requested'] === undefined) continue;
        gaps.userToStarted.push(t['turn.started'] - t['user.message']);
        gaps.startedToRequested.push(t['model.requested'] - t['turn.started']);
      }
    }
    const sandboxes = descendants(pid).length;
    await sleep(3000);
    const settledRss = rssBytes(pid);
    const settled = await eldSnapshot(pid, eldFile);
    const all = [...ttfts, ...toolTtfts];
    const l = stats(all);
    const sg = stats(single);
    printFigure({
      bench: 'ttft.load',
      sessions: LOAD_SESSIONS,
      toolSessions: sessions.filter((s) => s.tool).length,
      connections: LOAD_CONNECTIONS,
      seconds: round(elapsed, 1),
      turns: completed,
      turnsPerSec: round(completed / LOAD_SECONDS, 1),
      failedTurns: failures.length,
      unit: 'ms',
      ...p50p95('ttft', l),
      textTurnTtftP95: round(quantile(ttfts, 0.95)),
      toolTurnTtftP95: toolTtfts.length ? round(quantile(toolTtfts, 0.95)) : null,
      baseline: 'one session at a time in the same daemon, same prompt mix',
      ...p50p95('single', sg),
      singleTurnsPerSec: round(1000 / mean(singleTurnMs), 1),
      p95Ratio: round(l.p95 / sg.p95),
      directBaseline: `${LOAD_SESSIONS} loops calling the SDK directly from the bench process with the byte-identical bodies of one text and one tool turn, same mix, ${DIRECT_SECONDS} s`,
      directTurnsPerSec: direct,
      throughputToDirect: round(completed / LOAD_SECONDS / direct),
      floor: `the same ${LOAD_SESSIONS} loops through a minimal forwarder process (bench/ttft/forwarder.ts: same transport and SDK, nothing validated, logged or durable, no tool run), ${DIRECT_SECONDS} s`,
      forwarderTurnsPerSec: forwarded,
      forwarderToDirect: round(forwarded / direct),
      daemonToForwarder: round(completed / LOAD_SECONDS / forwarded),
      ...cpu,
      target: '>= 0.9x direct-SDK throughput; daemon event-loop delay p99 <= 20 ms (ttft.load.daemon eldLoadP99)',
    });
    printFigure({
      bench: 'ttft.load.daemon',
      unit: 'MB / ms',
      rssIdleMB: round(idleRss / 1048576, 1),
      rssPeakMB: round(peakRss / 1048576, 1),
      rssMeanUnderLoadMB: round(mean(rssSamples) / 1048576, 1),
      rssAtQuartersOfLoadMB: [0.25, 0.5, 0.75, 1].map((q) => round((rssSamples[Math.min(rssSamples.length - 1, Math.floor(q * rssSamples.length) - 1)] ?? 0) / 1048576, 1)),
      rss3sAfterLoadMB: round(settledRss / 1048576, 1),
      heapUsedIdleMB: idleEld.heapUsedMB,
      heapUsedEndOfLoadMB: loadEld.heapUsedMB,
      heapUsed3sAfterLoadMB: settled.heapUsedMB,
      heapTotal3sAfterLoadMB: settled.heapTotalMB,
      external3sAfterLoadMB: settled.externalMB,
      arrayBuffers3sAfterLoadMB: settled.arrayBuffersMB,
      processesBelowDaemon: sandboxes,
      eventLoopDelay: 'inside the daemon: perf_hooks.monitorEventLoopDelay (5 ms resolution, figures are the excess over 5 ms) via an --import preload',
      eldIdleP99: idleEld.p99,
      eldLoadP50: loadEld.p50,
      eldLoadP99: loadEld.p99,
      eldLoadMax: loadEld.max,
      gcPausesUnderLoad: loadEld.gcPauses,
      controlBenchProcessEldLoadP99: controlMs(control.percentile(99)),
      controlBenchProcessEldLoadMax: controlMs(control.max),
      outsideProbe: 'round trip of an unknown-method request from a separate process every 20 ms',
      pingIdleP50: round(quantile(idlePing, 0.5)),
      pingIdleP99: round(quantile(idlePing, 0.99)),
      pingLoadP50: round(quantile(loadPing, 0.5)),
      pingLoadP99: round(quantile(loadPing, 0.99)),
      pingLoadMax: round(Math.max(...loadPing)),
      appendLatencyAfterLoadMs: loadStatus.appendLatencyMs,
      loadedTurnUserToTurnStartedMeanMs: round(mean(gaps.userToStarted)),
      loadedTurnStartedToModelRequestedMeanMs: round(mean(gaps.startedToRequested)),
    });
    if (failures.length) process.stderr.write(`ttft.load: ${failures.length} turns did not complete, e.g. ${failures[0]}\n`);
  } finally {
    probe?.close();
    await stopDaemon(daemon);
  }
}
