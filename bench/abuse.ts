/**
 * Daemon memory under clients that misbehave, one JSON line per scenario: RSS before,
 * the peak while the client misbehaves (VmHWM, reset just before), and 30 s after it
 * went away, each beside a fresh idle daemon measured in the same run.
 *
 * - fuzz: the whole hostile-input corpus (test/fuzz/corpus.ts)
 * - burst: 200 pipelined session/events of a 16 MiB session, not read for 5 s
 * - slow-reader: 60 subscriptions from 0 of that session on one connection, not read for 5 s
 * - big-create: 60 session/create with a 15 MB system prompt, then one session/list
 * - turns: 1,000 turns (20 sessions of 50, 4 at a time) against the model emulator;
 *   the bound is that RSS 30 s later stays within 1.5x of the fresh idle daemon;
 *   a second baseline, idle after one turn, shows what the first turn loads once
 *
 * `AGENTD_BENCH_SETTLE_MS` changes the 30 s (for a quick look; figures quote the 30 s).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SessionPrompt } from '../protocol/index.js';
import { bigCreates, bigSession, burst, fuzz, resetPeak, rss, slowSubscribers, type Abuse } from '../test/support/abuse.js';
import { API_KEY, createSession, settle } from '../test/support/agent.js';
import { startDaemon, type TestDaemon } from '../test/support/daemon.js';
import { reply, startModelEmulator, type ModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { printFigure } from './log.js';

const SETTLE_MS = Number(process.env.AGENTD_BENCH_SETTLE_MS ?? 30_000);
const HOLD_MS = 5_000;
const MiB = 1024 * 1024;

const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Setup {
  daemon: TestDaemon;
  workspace: string;
  emulator?: ModelEmulator;
}

async function setUp(withModel = false): Promise<Setup> {
  const emulator = withModel ? await startModelEmulator({ apiKey: API_KEY, defaultReply: reply.text('a short answer for the bench, a few words long') }) : undefined;
  const daemon = await startDaemon(emulator ? { env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY } } : {});
  return { daemon, workspace: mkdtempSync(join(tmpdir(), 'agentd-bench-ws-')), ...(emulator ? { emulator } : {}) };
}

async function tearDown(setup: Setup): Promise<void> {
  await setup.daemon.dispose();
  await setup.emulator?.close();
  rmSync(setup.workspace, { recursive: true, force: true });
}

/**
 * A fresh daemon, idle for as long as a scenario's "after" waits: the baseline. `warm`:
 * one that ran a single turn first (the model SDK loaded and compiled), a second
 * baseline for the turns figure, which separates what one turn costs once from what
 * a thousand leave behind.
 */
async function idleRss(warm = false): Promise<number> {
  const setup = await setUp(warm);
  try {
    if (warm) await turns(setup, 1, 1);
    await sleep(SETTLE_MS);
    return rss(setup.daemon.proc.pid!).now;
  } finally {
    await tearDown(setup);
  }
}

/** Measures one scenario: `prepare` (not measured), then `misbehave` between the before and peak readings. */
async function measureOne(
  name: string,
  idle: number,
  options: { withModel?: boolean; prepare?: (s: Setup) => Promise<unknown>; misbehave: (s: Setup, prepared: unknown) => Promise<unknown> },
): Promise<void> {
  const setup = await setUp(options.withModel);
  try {
    const pid = setup.daemon.proc.pid!;
    const prepared = await options.prepare?.(setup);
    const before = rss(pid).now;
    resetPeak(pid);
    const detail = await options.misbehave(setup, prepared);
    const peak = rss(pid).peak;
    await sleep(SETTLE_MS);
    const after = rss(pid).now;
    printFigure({
      bench: `abuse.${name}`,
      unit: 'MiB',
      rssBefore: mib(before),
      rssPeak: mib(peak),
      rssAfter: mib(after),
      afterMs: SETTLE_MS,
      baseline: 'a fresh idle daemon, same run',
      baselineRss: mib(idle),
      afterVsBaseline: Math.round((after / idle) * 100) / 100,
      ...(detail && typeof detail === 'object' ? detail : {}),
    });
  } finally {
    await tearDown(setup);
  }
}

/** Holds the abuse (nothing read) for HOLD_MS, then reads everything and hangs up; counts the answers. */
async function hold(abuse: Promise<Abuse>): Promise<{ answers: number; refused: number }> {
  const started = await abuse;
  await sleep(HOLD_MS);
  const answers = await started.finish();
  return { answers: answers.length, refused: answers.filter((m) => m.error).length };
}

async function turns(setup: Setup, sessions = 20, perSession = 50): Promise<{ turns: number }> {
  const client = await setup.daemon.client();
  const run = async (worker: number) => {
    for (let s = worker; s < sessions; s += 4) {
      const sessionId = await createSession(client, { workspace: setup.workspace });
      for (let t = 0; t < perSession; t++) {
        await client.request(SessionPrompt, { sessionId, content: `turn ${t} of session ${s}` });
        await settle(client, sessionId);
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(run));
  client.close();
  return { turns: sessions * perSession };
}

async function main(): Promise<void> {
  // `node dist/bench/abuse.js turns burst` runs only those scenarios.
  const only = new Set(process.argv.slice(2));
  const measure = (name: string, ...rest: Parameters<typeof measureOne> extends [string, ...infer R] ? R : never) => (only.size === 0 || only.has(name) ? measureOne(name, ...rest) : Promise.resolve());
  const idle = await idleRss();
  const session = (s: Setup) => bigSession(s.daemon.layout, s.workspace, 16 * MiB);
  await measure('fuzz', idle, { misbehave: (s) => fuzz(s.daemon.layout).then((outcomes) => ({ cases: outcomes.length })) });
  await measure('burst', idle, { prepare: session, misbehave: (s, id) => hold(burst(s.daemon.layout, id as string, 200)) });
  await measure('slow-reader', idle, { prepare: session, misbehave: (s, id) => hold(slowSubscribers(s.daemon.layout, id as string, 60)) });
  await measure('big-create', idle, { misbehave: (s) => bigCreates(s.daemon.layout, s.workspace, 60, 15_000_000).then((a) => a.finish()).then((answers) => ({ answers: answers.length })) });
  if (only.size === 0 || only.has('turns')) {
    const warm = await idleRss(true);
    await measure('turns', idle, {
      withModel: true,
      misbehave: async (s) => ({ ...(await turns(s)), warmBaseline: 'a daemon idle after one turn, same run', warmBaselineRss: mib(warm) }),
    });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  main().catch((error) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exitCode = 1;
  });
}
