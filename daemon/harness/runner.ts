import type Anthropic from '@anthropic-ai/sdk';
import { setTimeout as delay } from 'node:timers/promises';
import type { NewKnownEvent, PermissionDecision, PermissionPolicy, PermissionQuestion, ToolErrorKind, Usage, UsageTotals } from '../../protocol/index.js';
import { appendEvents } from '../events.js';
import { LogError, type SessionLog, type WriteOptions } from '../log/session-log.js';
import { isFenced } from '../log/fenced.js';
import { buildRequest, buildSummaryRequest, contextTurns, estimateTokens, type ApiTool, type ContextOptions, type ModelRequest } from './context.js';
import { openCalls, pendingTurn, SessionFold, unansweredSteers, undeliveredSteers, type ToolCall, type Turn } from './fold.js';
import { callModel, ModelAborted, ModelFailure, type ModelCallHooks, type RetryPolicy } from './model.js';
import { decide } from './policy.js';
import type { ToolSlot } from './sandbox-slot.js';
import type { RemoteMcpServers } from './remote-mcp.js';
import type { HarnessLogger, HarnessRedactor } from './deps.js';
import { addUsage, costOf, reservationFor, spendOf, sumUsage, ZERO_USAGE, type PriceTable } from './usage.js';
import { BudgetExceeded, type TreeBudget } from './budget-ledger.js';
import { AGENT_TOOL_NAME, childResult, childSpec, type ChildOutcome, type ChildSpec } from './agent-tool.js';

/** What a runner needs from the daemon. */
export interface RunnerDeps {
  log: SessionLog;
  logger: HarnessLogger;
  model(): Promise<Anthropic>;
  delta(sessionId: string, turnId: string, kind: 'text' | 'tool_input', index: number, text: string): void;
  /** Resolves with the first answer from any client; rejects when `signal` aborts. */
  askPermission(question: PermissionQuestion, signal: AbortSignal): Promise<{ decision: PermissionDecision; by: string }>;
  retry: RetryPolicy;
  /** Replaces vault values in everything the runner records (a second line of defence). */
  redactor(): Promise<HarnessRedactor>;
  /** Runs a task on the session's queue, the one session/prompt appends on. */
  serialize<T>(sessionId: string, task: () => Promise<T>): Promise<T>;
  /** Names this daemon in harness.woke, so a hand-over says where the session went. */
  daemonId: string;
  /** A new session id, for a sub-agent named in the log before it is created. */
  newSessionId(): string;
  /**
   * Creates the sub-agent session unless it exists, runs it, and resolves with how its
   * turn ended (at once when the log says it already did). Aborting `signal` interrupts it.
   */
  runChild(spec: ChildSpec, signal: AbortSignal): Promise<ChildOutcome>;
  /** The budget of the session's tree (it and its sub-agents), which every model call reserves from. */
  budget: TreeBudget;
}

export interface RunnerConfig {
  sessionId: string;
  /** The session's workspace: path patterns of the permission policy are matched relative to it. */
  workspace: string;
  model: string;
  maxTokens: number;
  system: string;
  permissions?: PermissionPolicy;
  /** Context size (estimated tokens) above which older turns are compacted. */
  contextBudget: number;
  tools: readonly ApiTool[];
  usage: UsageTotals;
  prices: PriceTable;
  /** Set for a sub-agent: its questions go to the parent's controllers too. */
  parentSessionId?: string;
}

const SHUTDOWN = 'shutdown';
/** How long a turn about to complete waits for another writer's append it collided with. */
const APPEND_LANDING_MS = 5;

/** The event with secrets replaced in its data (never in its type). */
function redactData<E extends NewKnownEvent>(event: E, redactor: HarnessRedactor): E {
  return { ...event, data: redactor.value(event.data) };
}
const PAGE = 5000;
/**
 * A checkpoint of the fold is kept once this many events were folded since the last one
 * (and at every compaction): a woken runner reads at most about this many events.
 */
export const CHECKPOINT_EVERY = 1000;

/** The runner reached a durable point while draining: it stops there, recording nothing more. */
class Drained extends Error {}

/** Meta of a session with no turn running: session/steer reads `runningTurn` to know what to join. */
const NO_TURN_RUNNING = { runningTurn: null };

/**
 * The brain of one session, and nothing it knows is not in the log: it folds the log,
 * finds the first unfinished turn and carries it on from wherever it stands, so a
 * runner that died at any point is replaced by one that continues without a duplicate
 * reply or an orphaned tool call.
 */
export class SessionRunner {
  private fold = new SessionFold();
  /** Resumes the fold from the session's checkpoint, once, before the first read. */
  private restored: Promise<void> | undefined;
  /** The seq of the newest checkpoint kept or being kept (0: none). */
  private checkpointSeq = 0;
  private checkpointing: Promise<void> | undefined;
  /** Deltas that arrived before the model.requested of their call was durable (see appendUnawaited). */
  private heldDeltas: Array<() => void> | undefined;
  /** Calls whose tool.started this runner wrote with the event before, not yet run. */
  private readonly launched = new Set<string>();
  /** A write started but not awaited (model.requested): the next append waits for it, so the log keeps the loop's order. */
  private unawaited: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private again = false;
  private turnAbort: AbortController | undefined;
  private stopped = false;
  /** Set by drain(): finish the model or tool call in flight, start nothing new. */
  private draining = false;
  /** Withdraws a permission wait when draining: an open question is already durable. */
  private readonly drainAbort = new AbortController();
  /** Writes in order, one at a time: sub-agent calls finish side by side, and the fold takes events in order. */
  private appending: Promise<void> = Promise.resolve();
  /** A turn interrupted before it started (see interrupt). */
  private interruptAtStart: string | undefined;
  /** The turn running now, and its tool call under way: what a connection the sandbox makes is attributed to. */
  running: { turnId: string; toolUseId?: string } | undefined;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly config: RunnerConfig,
    readonly slot: ToolSlot,
    private readonly remote: RemoteMcpServers,
  ) {}

  /**
   * Runs pending turns. A kick while running makes the loop look again; a kick that
   * lands while the loop is finishing starts it anew, so no prompt is ever left behind.
   */
  kick(woke = false): Promise<void> {
    this.again = true;
    if (this.loop) return this.loop;
    this.loop = (async () => {
      while (this.again && !this.stopped) {
        this.again = false;
        await this.run(woke);
        woke = false;
      }
    })()
      .catch((error: unknown) =>
        isFenced(error)
          ? this.deps.logger.log('warn', 'session runner stopped: its lease was taken over', { sessionId: this.config.sessionId })
          : this.deps.logger.log('error', 'session runner failed', { sessionId: this.config.sessionId, error: String((error as Error)?.stack ?? error) }),
      )
      .finally(() => {
        this.loop = undefined;
        if (this.again && !this.stopped) void this.kick();
      });
    return this.loop;
  }

  get busy(): boolean {
    return this.loop !== undefined;
  }

  /** Whether the log (written by anyone) holds a turn not yet finished. */
  async hasPendingTurn(): Promise<boolean> {
    await this.catchUp();
    return pendingTurn(this.fold.state) !== undefined;
  }

  /** Resolves once the writes started so far (one not waited for too) have landed or failed. */
  async writesLanded(): Promise<void> {
    await this.appending;
  }

  /** Usage as recorded now: another daemon may have run turns of this session meanwhile. */
  setUsage(usage: UsageTotals): void {
    this.config.usage = usage;
  }

  /**
   * Stops the running turn; false when none runs. With `turnId` (a sub-agent's turn whose
   * parent was interrupted), only that turn, and it is stopped as it starts if it has not yet.
   */
  interrupt(turnId?: string): boolean {
    if (this.turnAbort && !this.turnAbort.signal.aborted && (turnId === undefined || this.running?.turnId === turnId)) {
      this.turnAbort.abort('interrupt');
      return true;
    }
    if (turnId !== undefined) this.interruptAtStart = turnId;
    return false;
  }

  /**
   * Stops at the next durable point: the model call or tool call in flight finishes and
   * is recorded, nothing new starts, and a wait for a permission answer ends (the
   * question is in the log). Resolves when the runner is idle; the turn stays open in
   * the log and carries on when the session is next woken.
   */
  async drain(): Promise<void> {
    this.draining = true;
    this.drainAbort.abort('drain');
    await this.loop;
  }

  /** Stops without recording anything, as a crash would; the next daemon carries on. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.turnAbort?.abort(SHUTDOWN);
    await this.loop;
    await Promise.allSettled([this.slot.close(), this.remote.close()]);
  }

  private async run(woke: boolean): Promise<void> {
    await this.catchUp();
    // Nothing of this session runs now: what its calls cut off by a crash hold is spent.
    if (woke) await this.deps.budget.release(this.config.sessionId);
    if (woke && pendingTurn(this.fold.state)) {
      await this.append([{ type: 'harness.woke', data: { fromSeq: this.fold.state.headSeq, pendingTurn: pendingTurn(this.fold.state)!.turnId, daemon: this.deps.daemonId } }]);
    }
    for (;;) {
      for (let turn = pendingTurn(this.fold.state); turn && !this.stopped && !this.draining; turn = pendingTurn(this.fold.state)) {
        await this.runTurn(turn);
        await this.catchUp();
      }
      if (this.stopped || this.draining) return;
      // On the session's queue, where prompts are appended: no prompt can land between
      // seeing no pending turn and writing 'idle', so 'idle' never hides one.
      // With other daemons appending too, 'idle' is written only if the log is still
      // where we looked (ifHead): a prompt that slipped in makes it a conflict, and we go on.
      const idle = await this.deps.serialize(this.config.sessionId, async () => {
        await this.catchUp();
        if (pendingTurn(this.fold.state)) return false;
        return this.deps.log.patchMeta(this.config.sessionId, { status: 'idle', ...NO_TURN_RUNNING }, { ifHead: this.fold.state.headSeq }).then(
          () => true,
          (error: unknown) => (error instanceof LogError && error.kind === 'conflict' ? false : Promise.reject(error)),
        );
      });
      if (idle) return;
    }
  }

  /** Reads the checkpoint ahead of the first catch-up. */
  prepare(): void {
    void (this.restored ??= this.restore());
  }

  /** Applies events appended since the fold's head (ours and other writers'). */
  private async catchUp(): Promise<void> {
    await (this.restored ??= this.restore());
    for (;;) {
      const page = await this.deps.log.read(this.config.sessionId, { from: this.fold.state.headSeq, limit: PAGE });
      for (const event of page.events) this.fold.apply(event);
      if (page.next === undefined) break;
    }
    this.checkpointIfDue();
  }

  /**
   * Starts from the session's checkpoint when there is one this fold can read; otherwise
   * (none, another format, unreadable) from seq 0, which folds to the same state.
   */
  private async restore(): Promise<void> {
    const checkpoint = await this.deps.log.getCheckpoint(this.config.sessionId).catch((error: unknown) => {
      this.deps.logger.log('warn', 'reading the session checkpoint failed; folding the whole log', { sessionId: this.config.sessionId, error: String(error) });
      return undefined;
    });
    const fold = checkpoint && SessionFold.fromCheckpoint(checkpoint);
    if (!fold) return;
    this.fold = fold;
    this.checkpointSeq = checkpoint.seq;
  }

  /**
   * Keeps a checkpoint of the fold when enough was folded since the last one, or the
   * context was just compacted. Not awaited, one at a time: the turn never waits for it,
   * and a checkpoint lost in a crash only makes the next wake read further back.
   */
  private checkpointIfDue(compacted = false): void {
    const { headSeq } = this.fold.state;
    if (this.checkpointing || headSeq <= this.checkpointSeq || (!compacted && headSeq - this.checkpointSeq < CHECKPOINT_EVERY)) return;
    const checkpoint = this.fold.checkpoint();
    this.checkpointSeq = checkpoint.seq;
    this.checkpointing = this.deps.log
      .putCheckpoint(this.config.sessionId, checkpoint)
      .then(
        () => undefined,
        (error: unknown) => this.deps.logger.log('warn', 'keeping a session checkpoint failed', { sessionId: this.config.sessionId, error: String(error) }),
      )
      .finally(() => (this.checkpointing = undefined));
  }

  /** Appends through the typed writer, redacted first: what is checked against the schema is what is written. */
  private append(events: NewKnownEvent[], metaPatch?: Record<string, unknown>, options?: WriteOptions): Promise<void> {
    // A write started and not awaited (appendUnawaited) lands first; its failure surfaces here.
    const before = this.unawaited;
    this.unawaited = undefined;
    const appended = this.appending.then(async () => {
      await before;
      await this.appendNow(events, metaPatch, options);
    });
    this.appending = appended.catch(() => undefined);
    return appended;
  }

  private async appendNow(events: NewKnownEvent[], metaPatch?: Record<string, unknown>, options?: WriteOptions): Promise<void> {
    const redactor = await this.deps.redactor();
    const redacted = redactor.empty ? events : events.map((e) => redactData(e, redactor));
    const seqs = await appendEvents(this.deps.log, this.config.sessionId, redacted, metaPatch, options);
    // Our events right after what the fold has: apply them without reading them back.
    // Otherwise another writer got in between, and the log is read in order.
    if (seqs[0] !== this.fold.state.headSeq) return this.catchUp();
    const ts = Date.now();
    redacted.forEach((e, i) => this.fold.apply({ seq: seqs[i]!, ts, type: e.type, data: e.data }));
    this.checkpointIfDue(redacted.some((e) => e.type === 'context.compacted'));
  }

  /**
   * Starts an append that nothing needs durable before the next step: the next append
   * (or the end of the turn) waits for it. A failure surfaces there.
   */
  private appendUnawaited(events: NewKnownEvent[], metaPatch?: Record<string, unknown>): void {
    const write = this.append(events, metaPatch);
    this.unawaited = write;
    // Deltas wait for it: clients take what streams after a model.requested as that call's.
    const held: Array<() => void> = [];
    this.heldDeltas = held;
    write.then(
      () =>
        // After the subscriptions' deliveries of the write (microtasks): the event goes out first.
        setImmediate(() => {
          if (this.heldDeltas === held) this.heldDeltas = undefined;
          for (const send of held) send();
        }),
      () => {
        // Surfaces when awaited, not as an unhandled rejection; the deltas of an unrecorded call go.
        if (this.heldDeltas === held) this.heldDeltas = undefined;
      },
    );
  }

  /** Waits for a write started with appendUnawaited. */
  private async settleUnawaited(): Promise<void> {
    const write = this.unawaited;
    this.unawaited = undefined;
    await write;
  }

  private async runTurn(turn: Turn): Promise<void> {
    const abort = new AbortController();
    this.turnAbort = abort;
    const { turnId } = turn;
    this.running = { turnId };
    if (this.interruptAtStart === turnId) abort.abort('interrupt');
    // A turn that opens with a model call records turn.started with model.requested in
    // one durable write: one fsync less before the first token.
    const opening: NewKnownEvent[] = [];
    try {
      if (!turn.started) {
        if (openCalls(turn).length === 0) opening.push({ type: 'turn.started', data: { turnId } });
        else await this.append([{ type: 'turn.started', data: { turnId } }], { status: 'running', runningTurn: turnId });
      }
      for (;;) {
        await this.settleOpenCalls(turn, abort.signal);
        if (abort.signal.aborted) throw new ModelAborted('aborted');
        // A durable point: every result so far is recorded, the next model call not yet made.
        if (this.draining) throw new Drained();
        if (await this.completed(turn)) return;
        // Steered input goes out with this call; model.requested says so, which places it in the context for good.
        const steers = undeliveredSteers(turn).map((s) => s.seq);
        const request = await this.compactIfNeeded(turn, buildRequest(this.fold.state, this.contextOptions()), abort.signal);
        const reply = await this.callModel(`${turnId}:${turn.steps.length}`, request, this.hooks(turnId, true, () => opening.splice(0), steers), abort.signal);
        this.addUsage(reply.usage);
        const answer: NewKnownEvent = { type: 'assistant.message', data: { turnId, content: reply.content, stopReason: reply.stopReason, usage: reply.usage } };
        const toolCalls = reply.content.flatMap((block) => (block.type === 'tool_use' ? [block] : []));
        const firstCall = toolCalls[0];
        if (!firstCall) {
          if (await this.answerAndComplete(turn, answer, reply)) return;
          continue;
        }
        // Sub-agents are named in tool.started of their own, written before any other call of the reply runs.
        const agentCalls = toolCalls.some((call) => call.name === AGENT_TOOL_NAME);
        const started = agentCalls ? [] : this.launch(turnId, { toolUseId: firstCall.id, name: firstCall.name, input: firstCall.input });
        await this.append([answer, ...started], { usage: this.config.usage });
        this.launchedWith(started);
      }
    } catch (error) {
      // Whatever went wrong, the write the model call did not wait for ends first (and is ours to report).
      const unrecorded = await this.settleUnawaited().then(
        () => undefined,
        (e: unknown) => e,
      );
      if (isFenced(unrecorded)) return;
      // Stopped, drained, or another daemon took the session over: it records the rest, not us.
      if (abort.signal.reason === SHUTDOWN || isFenced(error) || (this.draining && !abort.signal.aborted)) return;
      const usage = this.turnUsage(turn);
      if (error instanceof ModelAborted || abort.signal.aborted) {
        await this.append([...opening.splice(0), ...this.interruptedResults(turn), { type: 'turn.interrupted', data: { turnId, usage } }], NO_TURN_RUNNING);
      } else {
        const known = error instanceof ModelFailure || error instanceof BudgetExceeded;
        const message = known ? error.message : `internal error: ${(error as Error)?.message ?? error}`;
        if (!known) this.deps.logger.log('error', 'turn failed', { sessionId: this.config.sessionId, error: String((error as Error)?.stack ?? error) });
        const reason = error instanceof BudgetExceeded ? { reason: 'budget_exceeded' } : {};
        await this.append([...opening.splice(0), ...this.interruptedResults(turn), { type: 'turn.failed', data: { turnId, error: message, ...reason, usage } }], NO_TURN_RUNNING);
      }
    } finally {
      this.turnAbort = undefined;
      this.launched.clear();
      this.running = undefined;
    }
  }

  /**
   * Ends the turn when the model's last reply asked for nothing more and no steered input
   * waits for it. Written only if the log is where the fold is: input steered in meanwhile
   * makes it a conflict, and the turn goes on with it.
   */
  private async completed(turn: Turn): Promise<boolean> {
    const last = turn.steps.at(-1);
    if (!last || last.calls.length > 0 || unansweredSteers(turn).length > 0) return false;
    const ended: NewKnownEvent = { type: 'turn.completed', data: { turnId: turn.turnId, stopReason: last.stopReason, usage: this.turnUsage(turn) } };
    try {
      await this.append([ended], NO_TURN_RUNNING, { ifHead: this.fold.state.headSeq });
      return true;
    } catch (error) {
      if (!(error instanceof LogError && error.kind === 'conflict')) throw error;
      const before = this.fold.state.headSeq;
      await this.catchUp();
      // Another writer's append is under way and not yet readable: let it land before looking again.
      if (this.fold.state.headSeq === before) await delay(APPEND_LANDING_MS);
      return this.completed(turn);
    }
  }

  /**
   * Writes a reply that asked for no tool. With turn.completed in the same durable write
   * when no steered input waits for an answer, and only if the log is where the fold is:
   * input steered in meanwhile makes it a conflict. Otherwise the reply alone, and the
   * turn goes on (see completed).
   */
  private async answerAndComplete(turn: Turn, answer: NewKnownEvent, reply: { stopReason: string | null; usage: Usage }): Promise<boolean> {
    // The call's model.requested (not awaited) is folded first: the steers it carried are marked.
    await this.settleUnawaited();
    if (undeliveredSteers(turn).length === 0) {
      const usage = this.turnUsage({ usage: sumUsage(turn.usage, reply.usage) });
      const ended: NewKnownEvent = { type: 'turn.completed', data: { turnId: turn.turnId, stopReason: reply.stopReason, usage } };
      try {
        await this.append([answer, ended], { usage: this.config.usage, ...NO_TURN_RUNNING }, { ifHead: this.fold.state.headSeq });
        return true;
      } catch (error) {
        if (!(error instanceof LogError && error.kind === 'conflict')) throw error;
      }
    }
    await this.append([answer], { usage: this.config.usage });
    return false;
  }

  /** What the turn used, priced when the model has a price. */
  private turnUsage(turn: Pick<Turn, 'usage'>): UsageTotals {
    const cost = costOf(this.config.prices, this.config.model, turn.usage);
    return cost === undefined ? turn.usage : { ...turn.usage, costUsd: cost };
  }

  private contextOptions(): ContextOptions {
    return { model: this.config.model, maxTokens: this.config.maxTokens, system: this.config.system, tools: this.config.tools };
  }

  private hooks(turnId: string, record = true, opening: () => NewKnownEvent[] = () => [], steers: number[] = []): ModelCallHooks {
    return {
      onAttempt: async (attempt) => {
        if (!record) return;
        const first = opening();
        const carried = steers.length > 0 ? { steers } : {};
        const events: NewKnownEvent[] = [...first, { type: 'model.requested', data: { turnId, model: this.config.model, attempt, ...carried } }];
        const patch = first.length ? { status: 'running', runningTurn: turnId } : undefined;
        // Not waited for: a model call lost with its model.requested is made again on wake,
        // as it is when the record survives (see the design doc on durable points). With
        // other daemons on the log it is: a write cut off with its connection may still
        // land, and the lease hand-over reads the session's status from it.
        if (this.deps.log.supports.sharedWriters) await this.append(events, patch);
        else this.appendUnawaited(events, patch);
      },
      onRetry: (attempt, reason, delayMs) => this.append([{ type: 'model.retry', data: { turnId, attempt, reason, delayMs } }]),
      onDelta: (kind, index, text) => {
        if (!record) return;
        const send = () => this.deps.delta(this.config.sessionId, turnId, kind, index, text);
        if (this.heldDeltas) this.heldDeltas.push(send);
        else send();
      },
    };
  }

  /**
   * A model call within the tree's budget: it reserves the most it may use (the request's
   * estimated tokens and the reply's max_tokens), and settles what it used when it ends.
   * `key` names the call, the same when it is made again after a crash.
   */
  private async callModel(key: string, request: ModelRequest, hooks: ModelCallHooks, signal: AbortSignal) {
    const { sessionId, model, prices } = this.config;
    await this.deps.budget.reserve(`${sessionId}:${key}`, reservationFor(prices, model, estimateTokens(request), request.max_tokens), AbortSignal.any([signal, this.drainAbort.signal]));
    let used = ZERO_USAGE;
    try {
      const reply = await callModel(await this.deps.model(), request, hooks, signal, this.deps.retry);
      used = reply.usage;
      return reply;
    } finally {
      // Stopped as in a crash: the next daemon's wake releases it.
      if (signal.reason !== SHUTDOWN) {
        await this.deps.budget.settle(`${sessionId}:${key}`, spendOf(prices, model, used)).catch((error: unknown) =>
          this.deps.logger.log('warn', 'settling a budget reservation failed; it stays held until the session next wakes', { sessionId, error: String(error) }),
        );
      }
    }
  }

  private addUsage(u: Usage): void {
    this.config.usage = addUsage(this.config.usage, u, this.config.model, this.config.prices);
  }

  /** Every tool call of the last reply gets exactly one result before the model is called again. */
  private async settleOpenCalls(turn: Turn, signal: AbortSignal): Promise<void> {
    const open = openCalls(turn);
    const agents = this.offers(AGENT_TOOL_NAME) ? open.filter((c) => c.name === AGENT_TOOL_NAME) : [];
    await this.settleAgentCalls(turn, agents, signal);
    const calls = open.filter((c) => !agents.includes(c));
    for (const [i, call] of calls.entries()) {
      // Recorded as started by this runner with the write before (see launch): it runs now, drain or not.
      const launched = this.launched.delete(call.toolUseId);
      if (signal.aborted || (this.draining && !launched)) return;
      if (call.startedSeq !== undefined && !launched) {
        // Started before a crash and never finished: say so; the model decides what to do.
        await this.appendResult(turn, call, 'the agent daemon stopped while this tool was running; it may or may not have completed', 'interrupted', 0);
        continue;
      }
      if (!launched) {
        if ((await this.permission(turn, call, signal)) === 'deny') {
          await this.appendResult(turn, call, `permission to run ${call.name} was denied`, 'denied', 0);
          continue;
        }
        if (signal.aborted || this.draining) return;
        await this.append([this.toolStarted(turn.turnId, call)]);
        if (!this.offers(call.name)) {
          await this.appendResult(turn, call, `unknown tool ${call.name}`, 'tool_error', 0);
          continue;
        }
      }
      const started = performance.now();
      const remote = this.remote.owns(call.name);
      this.running = { turnId: turn.turnId, toolUseId: call.toolUseId };
      const result = await (remote ? this.remote.call(call.name, call.input, signal) : this.slot.execute(call.name, call.input, signal)).finally(() => {
        this.running = { turnId: turn.turnId };
      });
      if (signal.reason === SHUTDOWN) return;
      const next = calls[i + 1];
      const nextStarted = next && !signal.aborted ? this.launch(turn.turnId, next) : [];
      await this.append([
        {
          type: 'tool.result',
          data: {
            turnId: turn.turnId,
            toolUseId: call.toolUseId,
            content: result.content,
            isError: result.isError,
            ...(result.errorKind ? { errorKind: result.errorKind } : {}),
            durationMs: Math.round(performance.now() - started),
          },
        },
        ...nextStarted,
      ]);
      this.launchedWith(nextStarted);
    }
  }

  private offers(tool: string): boolean {
    return this.config.tools.some((t) => t.name === tool);
  }

  private toolStarted(turnId: string, call: Pick<ToolCall, 'toolUseId' | 'name' | 'input'>): NewKnownEvent {
    return { type: 'tool.started', data: { turnId, toolUseId: call.toolUseId, name: call.name, input: call.input, where: this.remote.owns(call.name) ? 'daemon' : 'sandbox' } };
  }

  /**
   * tool.started for `call` to go in the write just before it, when nothing needs to
   * happen in between: the policy allows it without asking, the tool is known, and the
   * runner is not stopping. One fsync less per tool call; tool.started is still durable
   * before the tool runs. Empty otherwise (the call goes through settleOpenCalls' steps).
   */
  private launch(turnId: string, call: Pick<ToolCall, 'toolUseId' | 'name' | 'input'>): NewKnownEvent[] {
    // An `agent` call is named its sub-agent in its tool.started: settleAgentCalls writes that.
    if (this.draining || this.stopped || !this.offers(call.name) || call.name === AGENT_TOOL_NAME) return [];
    if (decide(this.config.permissions, this.fold.state.alwaysAllowed, call, this.config.workspace) !== 'allow') return [];
    return [this.toolStarted(turnId, call)];
  }

  /** Marks the calls whose tool.started was just written with another event. */
  private launchedWith(events: NewKnownEvent[]): void {
    for (const event of events) if (event.type === 'tool.started') this.launched.add(event.data.toolUseId);
  }

  /**
   * `agent` calls: each is named its sub-agent session in tool.started (before that
   * session exists, so a crash in between creates it once, not twice), then they all run
   * side by side and each records its result when its sub-agent's turn ends. A call that
   * started before a crash finds its sub-agent again and waits for it.
   */
  private async settleAgentCalls(turn: Turn, calls: ToolCall[], signal: AbortSignal): Promise<void> {
    const running: Array<Promise<void>> = [];
    for (const call of calls) {
      if (signal.aborted || this.draining) break;
      if (call.startedSeq === undefined) {
        if ((await this.permission(turn, call, signal)) === 'deny') {
          await this.appendResult(turn, call, `permission to run ${call.name} was denied`, 'denied', 0);
          continue;
        }
        if (signal.aborted || this.draining) break;
        const childSessionId = this.deps.newSessionId();
        const started: NewKnownEvent = { type: 'tool.started', data: { turnId: turn.turnId, toolUseId: call.toolUseId, name: call.name, input: call.input, where: 'daemon', childSessionId } };
        await this.append([started], { children: [...this.fold.state.children, childSessionId] });
      }
      const spec = childSpec(this.config.sessionId, call, this.config.tools);
      if (typeof spec === 'string') {
        await this.appendResult(turn, call, spec, 'tool_error', 0);
        continue;
      }
      // Draining, the wait ends but the sub-agent is left to reach its own durable point; the next daemon waits on.
      running.push(this.runAgentCall(turn, call, spec, AbortSignal.any([signal, this.drainAbort.signal])));
    }
    await Promise.all(running);
  }

  private async runAgentCall(turn: Turn, call: ToolCall, spec: ChildSpec, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    const outcome = await this.deps.runChild(spec, signal).catch((error: unknown): ChildOutcome | undefined =>
      signal.aborted ? undefined : { text: `the sub-agent could not run: ${(error as Error)?.message ?? error}`, isError: true },
    );
    // Interrupted or stopped: the turn records (or a later daemon finds) what is still open.
    if (!outcome || signal.aborted) return;
    // Its turn ended: a reservation it left open (a crash between its reply and the settling) is spent.
    await this.deps.budget.release(spec.childSessionId);
    // What the sub-agent used is the parent's too: in its turn (the fold adds it) and its session, so its budget counts it.
    if (outcome.usage) this.addUsage(outcome.usage);
    const result = childResult(turn.turnId, call.toolUseId, outcome, Math.round(performance.now() - started));
    await this.append([result], outcome.usage ? { usage: this.config.usage } : undefined);
  }

  private appendResult(turn: Turn, call: ToolCall, text: string, errorKind: ToolErrorKind, durationMs: number): Promise<void> {
    return this.append([this.errorResult(turn, call, text, errorKind, durationMs)]);
  }

  private errorResult(turn: Turn, call: ToolCall, text: string, errorKind: ToolErrorKind, durationMs: number): NewKnownEvent {
    return {
      type: 'tool.result',
      data: { turnId: turn.turnId, toolUseId: call.toolUseId, content: [{ type: 'text', text }], isError: true, errorKind, durationMs },
    };
  }

  /** Results for the calls an interrupt (or failure) left open, so no tool_use is ever orphaned. */
  private interruptedResults(turn: Turn): NewKnownEvent[] {
    return openCalls(turn).map((call) => this.errorResult(turn, call, 'interrupted before this tool finished', 'interrupted', 0));
  }

  private async permission(turn: Turn, call: ToolCall, signal: AbortSignal): Promise<'allow' | 'deny'> {
    const verdict = decide(this.config.permissions, this.fold.state.alwaysAllowed, call, this.config.workspace);
    if (verdict !== 'ask') return verdict;
    const known = call.permission?.decision;
    if (known) return known === 'deny' ? 'deny' : 'allow';
    const question: PermissionQuestion = {
      sessionId: this.config.sessionId,
      sessionTitle: this.fold.state.title ?? null,
      ...(this.config.parentSessionId ? { parentSessionId: this.config.parentSessionId } : {}),
      toolUseId: call.toolUseId,
      tool: call.name,
      input: call.input,
    };
    if (!call.permission) {
      await this.append([{ type: 'permission.requested', data: { turnId: turn.turnId, toolUseId: call.toolUseId, tool: call.name, input: call.input } }], { status: 'waiting' });
    } else {
      await this.deps.log.patchMeta(this.config.sessionId, { status: 'waiting' });
    }
    const answer = await this.deps.askPermission(question, AbortSignal.any([signal, this.drainAbort.signal]));
    await this.append([{ type: 'permission.resolved', data: { turnId: turn.turnId, toolUseId: call.toolUseId, decision: answer.decision, by: answer.by } }], { status: 'running', runningTurn: turn.turnId });
    return answer.decision === 'deny' ? 'deny' : 'allow';
  }

  /**
   * The request to send: `request` itself, or, when it would pass the budget, the one
   * built after the finished turns in context were summarised.
   */
  private async compactIfNeeded(turn: Turn, request: ModelRequest, signal: AbortSignal): Promise<ModelRequest> {
    const options = this.contextOptions();
    if (estimateTokens(request) <= this.config.contextBudget) return request;
    const done = contextTurns(this.fold.state).filter((t) => t !== turn && t.end);
    const lastDone = done.at(-1);
    if (!lastDone?.end) return request;
    const reply = await this.callModel(`${turn.turnId}:${turn.steps.length}:summary`, buildSummaryRequest(this.fold.state, done, options), this.hooks(turn.turnId, false), signal);
    this.addUsage(reply.usage);
    const summary = reply.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n').trim();
    if (!summary) return request;
    await this.append([{ type: 'context.compacted', data: { upToSeq: lastDone.end.seq, summary, turns: done.length, usage: reply.usage } }], { usage: this.config.usage });
    return buildRequest(this.fold.state, options);
  }
}
