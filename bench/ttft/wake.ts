import { cpSync, rmSync } from 'node:fs';
import { LevelSessionLog } from '../../daemon/log/index.js';
import type { NewEvent, StoredEvent } from '../../daemon/log/index.js';
import { SessionFold, pendingTurn } from '../../daemon/harness/fold.js';
import { buildRequest } from '../../daemon/harness/context.js';
import { startDaemon, tempHome } from '../../test/support/daemon.js';
import { WAKE_EVENTS, WAKE_REPS, printFigure, round, stats, withTimeout } from './common.js';
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

/** Pages through the log as the runner's catch-up does (pages of 5000). */
export async function readAll(log: LevelSessionLog, sessionId: string, each: (e: StoredEvent) => void): Promise<number> {
  let n = 0;
  for (let from: number | undefined = 0; from !== undefined; ) {
    const page: { events: StoredEvent[]; next?: number } = await log.read(sessionId, { from, limit: 5000 });
    for (const e of page.events) each(e);
    n += page.events.length;
    from = page.next;
  }
  return n;
}

export async function benchWake(emu: EmulatorHandle, modelEnv: Record<string, string>, scratch: Scratch): Promise<void> {
  const layout = tempHome('agentd-bench-wake-');
  const bigId = 's_benchwake0000000big';
  const smallId = 's_benchwake000000tiny';
  const ws = scratch.workspace();
  try {
    const events = wakeEvents(WAKE_EVENTS);
    let log = await LevelSessionLog.open(layout.db);
    await fillSession(log, bigId, ws, events);
    await fillSession(log, smallId, ws, [events[0]!, ...events.slice(-3)]);
    const storedBytes = events.reduce((a, e) => a + JSON.stringify(e).length, 0);
    await log.close();

    // Cold: the daemon just started: open the log, read, fold.
    const tCold = performance.now();
    log = await LevelSessionLog.open(layout.db);
    const coldFold = new SessionFold();
    await readAll(log, bigId, (e) => coldFold.apply(e));
    if (!pendingTurn(coldFold.state)) throw new Error('the bench session should have a pending turn');
    const coldMs = performance.now() - tCold;

    const readOnly: number[] = [];
    const wake: number[] = [];
    const wakeAndRequest: number[] = [];
    const options = { model: WAKE_MODEL, maxTokens: 8192, system: 'You are a coding agent.', tools: WAKE_TOOLS };
    let read = 0;
    for (let rep = 0; rep < WAKE_REPS; rep++) {
      const doRead = async () => {
        const t = performance.now();
        let bytes = 0;
        read = await readAll(log, bigId, (e) => (bytes += e.seq));
        readOnly.push(performance.now() - t);
      };
      const doWake = async () => {
        const t = performance.now();
        const fold = new SessionFold();
        await readAll(log, bigId, (e) => fold.apply(e));
        pendingTurn(fold.state);
        wake.push(performance.now() - t);
        // What it does next for a turn whose model call was in flight: build the request
        // and serialise it (as the SDK does).
        JSON.stringify(buildRequest(fold.state, options));
        wakeAndRequest.push(performance.now() - t);
      };
      if (rep % 2 === 0) {
        await doRead();
        await doWake();
      } else {
        await doWake();
        await doRead();
      }
    }
    await log.close();
    const w = stats(wake);
    const r = stats(readOnly);
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
      readOnlyP50: r.p50,
      readOnlyP95: r.p95,
      ratio: round(w.p50 / r.p50),
      foldCostP50: round(w.p50 - r.p50),
      withFirstRequestBuiltP50: wr.p50,
      withFirstRequestBuiltP95: wr.p95,
      coldOpenReadFoldMs: round(coldMs),
      target: '<= 100 ms',
    });

    // The same in the real daemon: start it on this log; it wakes both sessions. Time
    // from spawn to the emulator receiving each woken session's model call.
    const samples: Record<'big' | 'small', number[]> = { big: [], small: [] };
    let compactionCalls = 0;
    for (let rep = 0; rep < 5; rep++) {
      for (const which of ['big', 'small'] as const) {
        const home = tempHome('agentd-bench-wake-run-');
        const src = await LevelSessionLog.open(layout.db);
        await src.close();
        cpSync(layout.db, home.db, { recursive: true });
        // Only the session under test may wake: drop the other by archiving its copy.
        const copy = await LevelSessionLog.open(home.db);
        await copy.patchMeta(which === 'big' ? smallId : bigId, { status: 'archived' });
        await copy.append(which === 'big' ? smallId : bigId, [{ type: 'turn.completed', data: { turnId: 'x' } }]);
        await copy.close();
        const before = await emu.count();
        const t0 = performance.now();
        const daemon = await startDaemon({ layout: home, env: modelEnv });
        try {
          await withTimeout(emu.call('wait', before + 1), 30_000, 'woken model call');
          samples[which].push(performance.now() - t0);
          const body = await emu.call<{ messages: Array<{ content: unknown }> }>('body', before);
          if (JSON.stringify(body.messages.at(-1)).includes('Summarise the conversation')) compactionCalls++;
        } finally {
          await stopDaemon(daemon);
        }
      }
    }
    const b = stats(samples.big);
    const s = stats(samples.small);
    printFigure({
      bench: 'wake.10k.daemon',
      unit: 'ms',
      runs: samples.big.length,
      spawnToModelCallP50: b.p50,
      spawnToModelCallMax: round(Math.max(...samples.big)),
      baseline: 'the same daemon restart waking a 4-event session',
      baselineP50: s.p50,
      ratio: round(b.p50 / s.p50),
      wakeCostP50: round(b.p50 - s.p50),
      firstCallsThatWereCompactions: compactionCalls,
    });
  } finally {
    rmSync(layout.home, { recursive: true, force: true });
  }
}
