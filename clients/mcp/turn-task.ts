import type { CallToolResult, Task } from '@modelcontextprotocol/sdk/types.js';
import type { DaemonLink, FoldStep } from '../lib/index.js';
import { describeEvent, followTurn, renderSummary, type TurnSummary } from './turn.js';

/** A turn's place in the daemon: the session, the turn, and the seq of its prompt. */
export interface TurnIds {
  sessionId: string;
  turnId: string;
  seq: number;
}

/**
 * A task's id names its turn in the daemon's log, so any `agentd mcp` (one started
 * after the host and its server crashed too) finds the task again from the log alone.
 */
export function taskIdOf(ids: TurnIds): string {
  return `${ids.sessionId}.${ids.turnId}.${ids.seq}`;
}

export function turnIdsOf(taskId: string): TurnIds | undefined {
  const match = /^(s_[0-9a-z]{10,40})\.(t_[0-9a-z]{1,40})\.(\d{1,15})$/.exec(taskId);
  return match ? { sessionId: match[1]!, turnId: match[2]!, seq: Number(match[3]) } : undefined;
}

/** How often a host hears that a turn runs on, events or not: under MCP's 10 s, with room for a busy machine. */
export const PROGRESS_EVERY_MS = 5000;
/** How often a task's host is asked to poll. */
export const POLL_INTERVAL_MS = 500;
/** How long the last progress notification gets to reach the host before the result. */
const PROGRESS_FLUSH_MS = 50;

/** Sends one progress notification; best effort. */
export type ProgressSender = (progress: number, message: string) => Promise<void>;

export interface PendingQuestion {
  toolUseId: string;
  tool: string;
  input: Record<string, unknown>;
}

type Ending =
  | { kind: 'turn'; summary: TurnSummary }
  /** Stopped following at a permission question nobody here can answer (`stopAtQuestion`). */
  | { kind: 'asked'; question: PendingQuestion }
  | { kind: 'lost'; message: string };

export interface TurnTaskOptions {
  /** End the task's call at the first permission question instead of waiting (a host that cannot answer one). */
  stopAtQuestion?: boolean;
  onStep?: (step: FoldStep) => void;
}

/**
 * One prompt's turn as an MCP task: follows the session from the prompt, and says at
 * any time the task's status (working, input_required while a permission question is
 * open, completed, cancelled by tasks/cancel, failed with the turn) and, once ended, its result.
 */
export class TurnTask {
  readonly taskId: string;
  private readonly createdAt = new Date().toISOString();
  private lastUpdatedAt = this.createdAt;
  private readonly asked = new Map<string, PendingQuestion>();
  private ending: Ending | undefined;
  private cancelled = false;
  private readonly stop = new AbortController();
  private readonly reporters = new Set<{ send: ProgressSender; count: number; last: Promise<void> }>();
  private lastEvent = 'turn queued';
  /** An event of the turn past its prompt came: the turn runs (it was not merely queued). */
  private running = false;
  private interruptOnStart: (() => Promise<unknown>) | undefined;
  private readonly started = Date.now();
  readonly caughtUp: Promise<void>;
  readonly ended: Promise<void>;

  constructor(
    link: DaemonLink,
    readonly ids: TurnIds,
    private readonly options: TurnTaskOptions = {},
  ) {
    this.taskId = taskIdOf(ids);
    let caughtUp!: () => void;
    this.caughtUp = new Promise((resolve) => (caughtUp = resolve));
    const heartbeat = setInterval(() => this.report(`running for ${Math.round((Date.now() - this.started) / 1000)} s; last: ${this.lastEvent}`), PROGRESS_EVERY_MS);
    heartbeat.unref();
    this.ended = followTurn(link, { ...ids, from: ids.seq, onStep: (step) => this.step(step), onCaughtUp: caughtUp, signal: this.stop.signal })
      .then(
        (summary): Ending => ({ kind: 'turn', summary }),
        (error: Error): Ending => {
          const question = [...this.asked.values()][0];
          return this.stop.signal.aborted && question ? { kind: 'asked', question } : { kind: 'lost', message: error.message };
        },
      )
      .then(async (ending) => {
        clearInterval(heartbeat);
        caughtUp();
        // The last progress goes out before the result: after it, the host no longer knows the token.
        await Promise.all([...this.reporters].map((r) => r.last));
        // The TypeScript SDK's client handles a notification a microtask later but a response at
        // once, so a progress notification read in the same chunk as the result is dropped as
        // "unknown token". A short pause lets the host read the notifications first.
        if ([...this.reporters].some((r) => r.count > 0)) await new Promise((resolve) => setTimeout(resolve, PROGRESS_FLUSH_MS));
        this.ending = ending;
        this.touch();
      });
  }

  /** Progress for one host request, from now until the task ends. */
  reportTo(send: ProgressSender): void {
    if (!this.ending) this.reporters.add({ send, count: 0, last: Promise.resolve() });
  }

  /**
   * The host cancelled the task (`tasks/cancel`): it is cancelled now, and `interrupt` stops
   * the turn, at once if it runs, else once it starts (a queued turn must not stop another's).
   */
  cancel(interrupt: () => Promise<unknown>): void {
    this.cancelled = true;
    this.touch();
    this.interruptOnStart = interrupt;
    if (this.running) this.interruptNow();
  }

  get status(): Task {
    const base = { taskId: this.taskId, ttl: null, createdAt: this.createdAt, lastUpdatedAt: this.lastUpdatedAt, pollInterval: POLL_INTERVAL_MS };
    const ending = this.ending;
    if (this.cancelled && ending?.kind !== 'turn') return { ...base, status: 'cancelled', statusMessage: 'cancelled by the host; the turn is interrupted' };
    if (ending?.kind === 'lost') return { ...base, status: 'failed', statusMessage: ending.message };
    if (ending?.kind === 'asked') return { ...base, status: 'completed', statusMessage: 'the turn waits for a permission answer' };
    if (ending?.kind === 'turn') {
      const { outcome, error } = ending.summary;
      // A failed turn's result is an isError result: the spec makes that task `failed`. A turn
      // interrupted by anyone but tasks/cancel still completed the call (its result says so).
      if (outcome === 'failed') return { ...base, status: 'failed', statusMessage: error ?? 'the turn failed' };
      if (this.cancelled) return { ...base, status: 'cancelled', statusMessage: 'cancelled by the host; the turn was interrupted' };
      return { ...base, status: 'completed', ...(outcome === 'interrupted' ? { statusMessage: 'the turn was interrupted' } : {}) };
    }
    const question = [...this.asked.values()][0];
    if (question) return { ...base, status: 'input_required', statusMessage: this.questionLine(question) };
    return { ...base, status: 'working', statusMessage: this.lastEvent };
  }

  /** The tool result, once the task ended (undefined before). */
  get result(): CallToolResult | undefined {
    const ending = this.ending;
    if (ending?.kind === 'turn') {
      return {
        content: [{ type: 'text', text: renderSummary(ending.summary) }],
        structuredContent: ending.summary as unknown as Record<string, unknown>,
        // A failed turn is an error the caller should notice; an interrupted one was asked for.
        ...(ending.summary.outcome === 'failed' ? { isError: true } : {}),
      };
    }
    if (ending?.kind === 'asked') {
      const { sessionId, turnId, seq } = this.ids;
      const text =
        `${this.questionLine(ending.question)}.\nThis MCP host cannot ask its user (no elicitation), so the question stays open: ` +
        `answer it with agentd_answer_permission {"sessionId": "${sessionId}", "toolUseId": "${ending.question.toolUseId}", "decision": "allow"|"allow_always"|"deny"}, ` +
        `or from another client (\`agentd attach ${sessionId}\`). The turn (${turnId}) then runs on in the daemon; ` +
        `read what it did with agentd_read_events {"sessionId": "${sessionId}", "from": ${seq}}.`;
      return {
        content: [{ type: 'text', text }],
        structuredContent: { sessionId, turnId, waitingFor: ending.question, firstSeq: seq },
      };
    }
    if (ending?.kind === 'lost') return { isError: true, content: [{ type: 'text', text: ending.message }] };
    return undefined;
  }

  dispose(): void {
    this.stop.abort();
  }

  private questionLine(q: PendingQuestion): string {
    return `session ${this.ids.sessionId} waits for permission to run ${q.tool} ${JSON.stringify(q.input).slice(0, 300)} (toolUseId ${q.toolUseId})`;
  }

  private step(step: FoldStep): void {
    for (const change of step.changes) {
      if (change.kind !== 'tool') continue;
      const call = change.call;
      if (change.what === 'asked') this.asked.set(call.toolUseId, { toolUseId: call.toolUseId, tool: call.name, input: call.input });
      if (change.what === 'answered' || change.what === 'result') this.asked.delete(call.toolUseId);
    }
    this.options.onStep?.(step);
    if (step.event && step.event.type !== 'user.message' && !this.running) {
      this.running = true;
      this.interruptNow();
    }
    if (step.event) {
      this.lastEvent = describeEvent(step.event);
      this.report(this.lastEvent);
    }
    this.touch();
    if (this.options.stopAtQuestion && this.asked.size > 0) this.stop.abort();
  }

  private interruptNow(): void {
    const interrupt = this.interruptOnStart;
    this.interruptOnStart = undefined;
    if (interrupt && !this.ending) void interrupt().catch(() => undefined);
  }

  private report(message: string): void {
    for (const reporter of this.reporters) {
      reporter.count += 1;
      // Progress is best effort: a host that went away must not fail the turn.
      reporter.last = reporter.send(reporter.count, message).catch(() => undefined);
    }
  }

  private touch(): void {
    this.lastUpdatedAt = new Date().toISOString();
  }
}
