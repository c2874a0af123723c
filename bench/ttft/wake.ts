import { cpSync, rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { knownEvent } from '../../protocol/index.js';
import { LevelSessionLog } from '../../daemon/log/index.js';
import type { Checkpoint, NewEvent, StoredEvent } from '../../daemon/log/index.js';
import { SessionFold, pendingTurn } from '../../daemon/harness/fold.js';
import { CHECKPOINT_EVERY } from '../../daemon/harness/runner.js';
import { buildRequest } from '../../daemon/harness/context.js';
import { startDaemon, tempHome } from '../../test/support/daemon.js';
import { WAKE_EVENTS, WAKE_HUGE_EVENTS, WAKE_HUGE_REPS, WAKE_REPS, printFigure, quantile, round, rssBytes, stats, withTimeout, p50p95, inRotation } from './common.js';
import { EmulatorHandle } from './children.js';
import { Scratch, stopDaemon } from './driver.js';

// ---------------------------------------------------------------- 3. wake of a 10,000-event session

export const WAKE_MODEL = 'claude-sonnet-5-5';
export const WAKE_TOOLS = [
  { name: 'read_file', description: 'Read a file.', input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
  { name: 'bash', description: 'Run a command.', input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] } },
  { name: 'edit_file', description: 'Edit a file.', input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
];

export function lorem(chars: number, salt: number): string {
  const words = ['const', 'value', 'return', 'function', 'import', 'export', 'await', 'result', 'session', 'error', 'index', 'handler'];
  let s = '';
  for (let i = 0; s.length < chars; i++) s += words[(i * 7 + salt) % words.length] + (i % 9 === 8 ? ';\n' : ' ');
  return s.slice(0, chars);
}

/**
 * A realistic session: turns of a user message, three tool steps (assistant text +
 * tool_use, tool.started, tool.result with file-sized output) and a final answer; the
 * last turn is cut where a crash left it: the model call requested, no reply yet.
 */
export function wakeEvents(total: number): NewEvent[] {
  const events: NewEvent[] = [{ type: 'session.created', data: { workspace: '/tmp/bench-ws', permissions: { default: 'allow' } } }];
  const usage = { inputTokens: 1200, outputTokens: 180, cacheReadTokens: 1000, cacheWriteTokens: 200 };
  const tools = ['read_file', 'bash', 'edit_file'];
  const tail = 3;
  for (let t = 0; events.length + 18 + tail <= total; t++) {
    const turnId = `t_bench${String(t).padStart(11, '0')}`;
    events.push({ type: 'user.message', data: { turnId, content: `Please look at src/module-${t}.ts and ${lorem(120, t)}` } });
    events.push({ type: 'turn.started', data: { turnId } });
    events.push({ type: 'model.requested', data: { turnId, model: WAKE_MODEL, attempt: 1 } });
    for (let s = 0; s < 3; s++) {
      const toolUseId = `toolu_bench${t}x${s}`;
      const name = tools[s]!;
      const input = name === 'bash' ? { command: `npm test -- module-${t}` } : { path: `src/module-${t}.ts` };
      events.push({
        type: 'assistant.message',
        data: { turnId, content: [{ type: 'text', text: lorem(200, t + s) }, { type: 'tool_use', id: toolUseId, name, input }], stopReason: 'tool_use', usage },
      });
      events.push({ type: 'tool.started', data: { turnId, toolUseId, name, input, where: 'sandbox' } });
      events.push({
        type: 'tool.result',
        data: { turnId, toolUseId, content: [{ type: 'text', text: lorem(400 + ((t * 37 + s * 101) % 2400), t * 3 + s) }], isError: false, durationMs: 12 },
      });
      events.push({ type: 'model.requested', data: { turnId, model: WAKE_MODEL, attempt: 1 } });
    }
    events.push({ type: 'assistant.message', data: { turnId, content: [{ type: 'text', text: lorem(500, t) }], stopReason: 'end_turn', usage } });
    events.push({ type: 'turn.completed', data: { turnId, stopReason: 'end_turn' } });
    // Every 60 turns (~100k estimated tokens) the harness would have compacted: the
    // context stays under the default budget, as in a real long session.
    if (t % 60 === 59) events.push({ type: 'context.compacted', data: { upToSeq: events.length - 1, summary: lorem(1500, t) } });
  }
  // Make the count exact with sandbox replacements (the fold ignores them), then the
  // unfinished turn: user message, turn started, model call requested, no reply.
  while (events.length + tail < total) events.push({ type: 'sandbox.provisioned', data: { sandboxId: `sb-${events.length}`, isolation: 'bwrap', durationMs: 300, warnings: [] } });
  const turnId = 't_benchpending00000';
  const pendingTail: NewEvent[] = [
    { type: 'user.message', data: { turnId, content: 'Now run the whole test suite and fix what fails.' } },
    { type: 'turn.started', data: { turnId } },
    { type: 'model.requested', data: { turnId, model: WAKE_MODEL, attempt: 1 } },
  ];
  events.push(...pendingTail);
  return events;
}

export async function fillSession(log: LevelSessionLog, sessionId: string, workspace: string, events: NewEvent[]): Promise<void> {
  const now = Date.now();
  await log.create(
    {
      sessionId,
      createdAt: now,
      updatedAt: now,
      workspace,
      status: 'running',
      usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 },
      config: { permissions: { default: 'allow' } },
    },
    events.slice(0, 1),
  );
  for (let i = 1; i < events.length; i += 2000) await log.append(sessionId, events.slice(i, i + 2000));
}

/** Pages through the log from `start` as the runner's catch-up does (pages of 5000). */
export async function readAll(log: LevelSessionLog, sessionId: string, each: (e: StoredEvent) => void, start = 0): Promise<number> {
  let n = 0;
  for (let from: number | undefined = start; from !== undefined; ) {
    const page: { events: StoredEvent[]; next?: number } = await log.read(sessionId, { from, limit: 5000 });
    for (const e of page.events) each(e);
    n += page.events.length;
    from = page.next;
  }
  return n;
}

/**
 * The checkpoint a runner would hold for these events: it keeps one every CHECKPOINT_EVERY
 * folded events and at each compaction (SessionRunner.checkpointIfDue), by the same code.
 */
export function runnerCheckpoint(events: StoredEvent[]): Checkpoint | undefined {
  const fold = new SessionFold();
  let last: Checkpoint | undefined;
  for (const event of events) {
    fold.apply(event);
    if (event.type === 'context.compacted' || fold.state.headSeq - (last?.seq ?? 0) >= CHECKPOINT_EVERY) last = fold.checkpoint();
  }
  return last;
}

/** Heap in use after a full collection. */
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const WAKE_OPTIONS = { model: WAKE_MODEL, maxTokens: 8192, system: 'You are a coding agent.', tools: WAKE_TOOLS };

/** A woken runner's first steps: its checkpoint if it can read one, the events after it, the pending turn found. */
async function wakeFold(log: LevelSessionLog, sessionId: string, useCheckpoint: boolean): Promise<SessionFold> {
  const checkpoint = useCheckpoint ? await log.getCheckpoint(sessionId) : undefined;
  const fold = (checkpoint && SessionFold.fromCheckpoint(checkpoint)) || new SessionFold();
  await readAll(log, sessionId, (e) => fold.apply(e), fold.state.headSeq);
  if (!pendingTurn(fold.state)) throw new Error('the bench session should have a pending turn');
  return fold;
}

export async function benchWake(emu: EmulatorHandle, modelEnv: Record<string, string>, scratch: Scratch): Promise<void> {
  const layout = tempHome('agentd-bench-wake-');
  const bigId = 's_benchwake0000000big';
  const hugeId = 's_benchwake00000huge';
  const smallId = 's_benchwake000000tiny';
  const ws = scratch.workspace();
  try {
    const events = wakeEvents(WAKE_EVENTS);
    const huge = wakeEvents(WAKE_HUGE_EVENTS);
    let log = await LevelSessionLog.open(layout.db);
    await fillSession(log, bigId, ws, events);
    await fillSession(log, hugeId, ws, huge);
    await fillSession(log, smallId, ws, [events[0]!, ...events.slice(-3)]);
    const hugeCheckpoint = runnerCheckpoint(huge.map((e, seq) => ({ seq, ts: 0, ...e })))!;
    await log.putCheckpoint(hugeId, hugeCheckpoint);
    const storedBytes = events.reduce((a, e) => a + JSON.stringify(e).length, 0);
    await log.close();

    // Cold: the daemon just started: open the log, read, fold.
    const tCold = performance.now();
    log = await LevelSessionLog.open(layout.db);
    await wakeFold(log, bigId, false);
    const coldMs = performance.now() - tCold;

    // 10k events, no checkpoint: the full fold as it is now (events of our own log narrowed by
    // a type check) against the same fold with every event's schema run first (as before).
    const readOnly: number[] = [];
    const wake: number[] = [];
    const wakeSchema: number[] = [];
    const wakeAndRequest: number[] = [];
    let read = 0;
    const doRead = async () => {
      const t = performance.now();
      let bytes = 0;
      read = await readAll(log, bigId, (e) => (bytes += e.seq));
      readOnly.push(performance.now() - t);
    };
    const doWake = async () => {
      const t = performance.now();
      const fold = await wakeFold(log, bigId, false);
      wake.push(performance.now() - t);
      // What it does next for a turn whose model call was in flight: build the request
      // and serialise it (as the SDK does).
      JSON.stringify(buildRequest(fold.state, WAKE_OPTIONS));
      wakeAndRequest.push(performance.now() - t);
    };
    const doSchemaWake = async () => {
      const t = performance.now();
      const fold = new SessionFold();
      await readAll(log, bigId, (e) => (knownEvent(e), fold.apply(e)));
      wakeSchema.push(performance.now() - t);
    };
    await inRotation(WAKE_REPS, [doRead, doWake, doSchemaWake], (step) => step());
    // The fold alone, on the same events already read: as the harness folds them now, and
    // with every event's schema run first (knownEvent), as it did before.
    const stored: StoredEvent[] = [];
    await readAll(log, bigId, (e) => stored.push(e));
    const foldOnly: number[] = [];
    const schemaFoldOnly: number[] = [];
    const foldRuns: Array<[number[], (e: StoredEvent, fold: SessionFold) => void]> = [
      [foldOnly, (e, fold) => fold.apply(e)],
      [schemaFoldOnly, (e, fold) => (knownEvent(e), fold.apply(e))],
    ];
    await inRotation(WAKE_REPS, foldRuns, ([samples, step]) => {
      const t = performance.now();
      const fold = new SessionFold();
      for (const e of stored) step(e, fold);
      samples.push(performance.now() - t);
    });
    const w = stats(wake);
    const r = stats(readOnly);
    const ws10 = stats(wakeSchema);
    const fo = stats(foldOnly);
    const sfo = stats(schemaFoldOnly);
    const wr = stats(wakeAndRequest);
    printFigure({
      bench: 'wake.10k',
      unit: 'ms',
      events: read,
      storedMB: round(storedBytes / 1048576, 1),
      reps: WAKE_REPS,
      p50: w.p50,
      p95: w.p95,
      baseline: 'paged read of the same events without folding',
      ...p50p95('readOnly', r),
      ratio: round(w.p50 / r.p50),
      foldCostP50: round(w.p50 - r.p50),
      ...p50p95('schemaCheckedFold', ws10),
      schemaCheckedFoldCostP50: round(ws10.p50 - r.p50),
      ...p50p95('foldOnly', fo),
      foldOnlyBaseline: 'the same in-memory fold with every event schema-checked (zod), as before',
      ...p50p95('schemaFoldOnly', sfo),
      foldOnlySpeedup: round(sfo.p50 / fo.p50, 1),
      ...p50p95('withFirstRequestBuilt', wr),
      coldOpenReadFoldMs: round(coldMs),
      note: 'a full fold (no checkpoint); schemaCheckedFold is the same fold with every event zod-checked first, as the harness did before',
      target: '<= 100 ms',
    });

    // 100k events: from the checkpoint the runner would hold, against the whole log, against
    // the 4-event session; and the heap the woken fold keeps against the context it gives.
    const fromCheckpoint: number[] = [];
    const fullFold: number[] = [];
    const tiny: number[] = [];
    // The full folds run in a rotation of their own: the hundreds of MB one leaves behind
    // were collected during whichever sample came next (the tiny wake's p50 swung between
    // 1 and 5.6 ms with it).
    const wakeRuns: Array<Array<[number[], string, boolean]>> = [[[fromCheckpoint, hugeId, true], [tiny, smallId, true]], [[fullFold, hugeId, false]]];
    for (const runs of wakeRuns) await inRotation(WAKE_HUGE_REPS, runs, async ([samples, id, useCheckpoint]) => {
      const t = performance.now();
      const fold = await wakeFold(log, id, useCheckpoint);
      JSON.stringify(buildRequest(fold.state, WAKE_OPTIONS));
      samples.push(performance.now() - t);
    });
    const heapBefore = heapAfterGc();
    const kept = await wakeFold(log, hugeId, true);
    const heapKept = heapAfterGc() - heapBefore;
    const contextBytes = JSON.stringify(buildRequest(kept.state, WAKE_OPTIONS)).length;
    const fullBefore = heapAfterGc();
    const keptFull = await wakeFold(log, hugeId, false);
    const heapKeptFull = heapAfterGc() - fullBefore;
    await log.close();
    const c = stats(fromCheckpoint);
    const f = stats(fullFold);
    const t4 = stats(tiny);
    printFigure({
      bench: 'wake.100k',
      unit: 'ms',
      events: huge.length,
      eventsAfterCheckpoint: huge.length - hugeCheckpoint.seq,
      checkpointKB: round(hugeCheckpoint.state.length / 1024, 1),
      reps: WAKE_HUGE_REPS,
      ...p50p95('fromCheckpoint', c),
      baseline: 'the same wake (checkpoint, read, fold, first request built) of a 4-event session',
      ...p50p95('tiny', t4),
      ratio: round(c.p50 / t4.p50),
      ...p50p95('fullFold', f),
      fullFoldToCheckpointRatio: round(f.p50 / c.p50),
      heapKeptMB: round(heapKept / 1048576, 2),
      heapKeptFullFoldMB: round(heapKeptFull / 1048576, 2),
      contextMB: round(contextBytes / 1048576, 2),
      heapToContext: round(heapKept / contextBytes, 2),
      note: `heap kept: the woken fold's retained heap after gc; context: the JSON of the first request it builds (${keptFull.state.turns.length} turns in context)`,
      target: 'first token <= 1.5x the 4-event session; heap kept <= 2x the context',
    });

    // The same in the real daemon: start it on this log; it wakes the session under test
    // (the others archived in its copy). Time from spawn to the emulator receiving the
    // woken session's model call.
    const samples: Record<'huge' | 'big' | 'small', number[]> = { huge: [], big: [], small: [] };
    const rss: Record<'huge' | 'big' | 'small', number[]> = { huge: [], big: [], small: [] };
    let compactionCalls = 0;
    const ids = { huge: hugeId, big: bigId, small: smallId };
    for (let rep = 0; rep < 5; rep++) {
      for (const which of ['huge', 'big', 'small'] as const) {
        const home = tempHome('agentd-bench-wake-run-');
        cpSync(layout.db, home.db, { recursive: true });
        const copy = await LevelSessionLog.open(home.db);
        for (const other of Object.values(ids).filter((id) => id !== ids[which])) {
          await copy.patchMeta(other, { status: 'archived' });
          await copy.append(other, [{ type: 'turn.completed', data: { turnId: 'x' } }]);
        }
        await copy.close();
        const before = await emu.count();
        const t0 = performance.now();
        const daemon = await startDaemon({ layout: home, env: modelEnv });
        try {
          await withTimeout(emu.call('wait', before + 1), 60_000, 'woken model call');
          samples[which].push(performance.now() - t0);
          rss[which].push(rssBytes(daemon.proc.pid!));
          const body = await emu.call<{ messages: Array<{ content: unknown }> }>('body', before);
          if (JSON.stringify(body.messages.at(-1)).includes('Summarise the conversation')) compactionCalls++;
        } finally {
          await stopDaemon(daemon);
        }
      }
    }
    const h = stats(samples.huge);
    const b = stats(samples.big);
    const s = stats(samples.small);
    const mb = (list: number[]) => round(quantile(list, 0.5) / 1048576, 1);
    printFigure({
      bench: 'wake.100k.daemon',
      unit: 'ms',
      runs: samples.huge.length,
      spawnToModelCallP50: h.p50,
      spawnToModelCallMax: round(Math.max(...samples.huge)),
      baseline: 'the same daemon restart waking a 4-event session',
      baselineP50: s.p50,
      ratio: round(h.p50 / s.p50),
      wakeCostP50: round(h.p50 - s.p50),
      noCheckpoint10kP50: b.p50,
      noCheckpoint10kRatio: round(b.p50 / s.p50),
      daemonRssAtCallMB: { huge: mb(rss.huge), big: mb(rss.big), small: mb(rss.small) },
      firstCallsThatWereCompactions: compactionCalls,
      note: 'the 100k-event session has the checkpoint its runner would have kept; the 10k one none (a full fold)',
      target: '<= 1.5x',
    });
  } finally {
    rmSync(layout.home, { recursive: true, force: true });
  }
}
