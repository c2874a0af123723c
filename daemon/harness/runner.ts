import { setTimeout as delay } from 'node:timers/promises';
import type { NewKnownEvent, Usage, UsageTotals } from '../../protocol/index.js';
import { LogError } from '../log/session-log.js';
import { isFenced } from '../log/fenced.js';
import { buildRequest, buildSummaryRequest, contextTurns, estimateTokens, type ContextOptions, type ModelRequest } from './context.js';
import { openCalls, pendingTurn, unansweredSteers, undeliveredSteers, type Turn } from './fold.js';
import { callModel, ModelAborted, ModelFailure, type ModelCallHooks } from './model.js';
import type { ToolSlot } from './sandbox-slot.js';
import type { RemoteMcpServers } from './remote-mcp.js';
import type { RunnerConfig, RunnerDeps } from './deps.js';
import { addUsage, costOf, reservationFor, spendOf, sumUsage, ZERO_USAGE } from './usage.js';
import { BudgetExceeded } from './budget-ledger.js';
import { AGENT_TOOL_NAME } from './agent-tool.js';
import { SessionWriter, type SpeculativeInput } from './session-writer.js';
import { SHUTDOWN, ToolCalls } from './tool-calls.js';
import { FirstOutputGate } from './first-output.js';

export { CHECKPOINT_EVERY } from './session-writer.js';

/** How long the runner waits for another writer's append its conditional write collided with. */
const APPEND_LANDING_MS = 5;

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
/** Who resolved a network question a stopped daemon left open (see wake). */
const NETWORK_QUESTION_CUT = 'cut: the daemon stopped before it was answered';

export class SessionRunner {
  private readonly writer: SessionWriter;
  private readonly tools: ToolCalls;
  private loop: Promise<void> | undefined;
  private again = false;
  private turnAbort: AbortController | undefined;
  private stopped = false;
  /** Set by drain(): finish the model or tool call in flight, start nothing new. */
  private draining = false;
  /** Withdraws a permission wait when draining: an open question is already durable. */
  private readonly drainAbort = new AbortController();
  /** A prompt's user message to start on before it is durable (see kick). */
  private speculative: SpeculativeInput | undefined;
  /** The assumed user message did not land: the turn started on it stops and records nothing. */
  private inputLost = false;
  /** A turn interrupted before it started (see interrupt). */
  private interruptAtStart: string | undefined;
  /** The turn running now, and its tool call under way: what a connection the sandbox makes is attributed to. */
  running: { turnId: string; toolUseId?: string } | undefined;
  /** Eager provisioning waits on it (see Harness.provisionEagerly). */
  readonly firstOutput = new FirstOutputGate();

  constructor(
    private readonly deps: RunnerDeps,
    private readonly config: RunnerConfig,
    readonly slot: ToolSlot,
    private readonly remote: RemoteMcpServers,
  ) {
    this.writer = new SessionWriter(deps, config.sessionId);
    this.tools = new ToolCalls({
      deps,
      config,
      slot,
      remote,
      writer: this.writer,
      isDraining: () => this.draining,
      isStopped: () => this.stopped,
      drainSignal: this.drainAbort.signal,
      setRunning: (running) => (this.running = running),
      addUsage: (usage) => this.addUsage(usage),
    });
  }

  /**
   * Runs pending turns. A kick while running makes the loop look again; a kick that
   * lands while the loop is finishing starts it anew, so no prompt is ever left behind.
   * With `input` (a prompt not yet durable) an idle runner starts its turn at once.
   */
  kick(woke = false, input?: SpeculativeInput): Promise<void> {
    if (input && !this.loop) this.speculative = input;
    // From here, not from the request: the first call may wait to load the SDK, or for a wake.
    this.firstOutput.sent();
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
        this.firstOutput.passed(); // a turn that ended (or failed) before any output
        if (this.again && !this.stopped) void this.kick();
      });
    return this.loop;
  }

  get busy(): boolean {
    return this.loop !== undefined;
  }

  /** Whether the log (written by anyone) holds a turn not yet finished. */
  async hasPendingTurn(): Promise<boolean> {
    await this.writer.catchUp();
    return pendingTurn(this.writer.state) !== undefined;
  }

  /** Resolves once the writes started so far (one not waited for too) have landed or failed. */
  async writesLanded(): Promise<void> {
    await this.writer.landed();
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

  /**
   * Records the wake-up of a session a stopped daemon left mid-turn, and ends the network
   * questions it left open: the connections that waited on them went with that daemon (a
   * tool's question stays, for its call runs again and is still asked).
   */
  private async wake(): Promise<void> {
    const turn = pendingTurn(this.writer.state);
    const cut = await this.deps.openNetworkQuestions(this.config.sessionId);
    const events: NewKnownEvent[] = [
      ...(turn ? [{ type: 'harness.woke' as const, data: { fromSeq: this.writer.state.headSeq, pendingTurn: turn.turnId, daemon: this.deps.daemonId } }] : []),
      ...cut.map((toolUseId) => ({ type: 'permission.resolved' as const, data: { ...(turn ? { turnId: turn.turnId } : {}), toolUseId, decision: 'deny' as const, by: NETWORK_QUESTION_CUT } })),
    ];
    if (events.length > 0) await this.writer.append(events);
  }

  private async run(woke: boolean): Promise<void> {
    await this.writer.catchUp();
    const input = this.speculative;
    this.speculative = undefined;
    this.inputLost = false;
    // Only on an idle session: the assumed message opens the turn that runs next.
    if (input && !woke && !pendingTurn(this.writer.state)) {
      this.writer.assume(input, () => {
        this.inputLost = true;
        this.turnAbort?.abort('input lost');
      });
    }
    // Nothing of this session runs now: what its calls cut off by a crash hold is spent.
    if (woke) await this.deps.budget.release(this.config.sessionId);
    if (woke) await this.wake();
    for (;;) {
      for (let turn = pendingTurn(this.writer.state); turn && !this.stopped && !this.draining; turn = pendingTurn(this.writer.state)) {
        await this.runTurn(turn);
        await this.writer.catchUp();
      }
      if (this.stopped || this.draining) return;
      // On the session's queue, where prompts are appended: no prompt can land between
      // seeing no pending turn and writing 'idle', so 'idle' never hides one.
      // With other daemons appending too, 'idle' is written only if the log is still
      // where we looked (ifHead): a prompt that slipped in makes it a conflict, and we go on.
      const idle = await this.deps.serialize(this.config.sessionId, async () => {
        await this.writer.catchUp();
        if (pendingTurn(this.writer.state)) return 'turn';
        return this.deps.log.patchMeta(this.config.sessionId, { status: 'idle', ...NO_TURN_RUNNING }, { ifHead: this.writer.state.headSeq }).then(
          () => 'idle' as const,
          (error: unknown) => (error instanceof LogError && error.kind === 'conflict' ? ('conflict' as const) : Promise.reject(error)),
        );
      });
      if (idle === 'idle') return;
      if (idle === 'conflict') await this.afterConflict();
    }
  }

  /** Reads the checkpoint ahead of the first catch-up. */
  prepare(): void {
    this.writer.prepare();
  }

  private async runTurn(turn: Turn): Promise<void> {
    const abort = new AbortController();
    this.turnAbort = abort;
    const { turnId } = turn;
    this.running = { turnId };
    if (this.interruptAtStart === turnId) abort.abort('interrupt');
    if (this.inputLost) abort.abort('input lost');
    // A turn that opens with a model call records turn.started with model.requested in
    // one durable write: one fsync less before the first token.
    const opening: NewKnownEvent[] = [];
    try {
      if (!turn.started) {
        if (openCalls(turn).length === 0) opening.push({ type: 'turn.started', data: { turnId } });
        else await this.writer.append([{ type: 'turn.started', data: { turnId } }], { status: 'running', runningTurn: turnId });
      }
      for (;;) {
        await this.tools.settle(turn, abort.signal);
        if (abort.signal.aborted) throw new ModelAborted('aborted');
        // A durable point: every result so far is recorded, the next model call not yet made.
        if (this.draining) throw new Drained();
        if (await this.completed(turn)) return;
        // Steered input goes out with this call; model.requested says so, which places it in the context for good.
        const steers = undeliveredSteers(turn).map((s) => s.seq);
        const request = await this.compactIfNeeded(turn, buildRequest(this.writer.state, this.contextOptions()), abort.signal);
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
        const started = agentCalls ? [] : this.tools.launch(turnId, { toolUseId: firstCall.id, name: firstCall.name, input: firstCall.input });
        await this.writer.append([answer, ...started], { usage: this.config.usage });
        this.tools.launchedWith(started);
      }
    } catch (error) {
      // Whatever went wrong, the write the model call did not wait for ends first (and is ours to report).
      const unrecorded = await this.writer.settleUnawaited().then(
        () => undefined,
        (e: unknown) => e,
      );
      if (isFenced(unrecorded)) return;
      // The prompt's append failed (its client was told): the turn it opened never was.
      // Once: a store reopened after a failed fsync may yet hold the message, and then it runs.
      if (this.inputLost) {
        this.inputLost = false;
        return;
      }
      // Stopped, drained, or another daemon took the session over: it records the rest, not us.
      if (abort.signal.reason === SHUTDOWN || isFenced(error) || (this.draining && !abort.signal.aborted)) return;
      const usage = this.turnUsage(turn);
      if (error instanceof ModelAborted || abort.signal.aborted) {
        await this.writer.append([...opening.splice(0), ...this.tools.interruptedResults(turn), { type: 'turn.interrupted', data: { turnId, usage } }], NO_TURN_RUNNING);
      } else {
        const known = error instanceof ModelFailure || error instanceof BudgetExceeded;
        const message = known ? error.message : `internal error: ${(error as Error)?.message ?? error}`;
        if (!known) this.deps.logger.log('error', 'turn failed', { sessionId: this.config.sessionId, error: String((error as Error)?.stack ?? error) });
        const reason = error instanceof BudgetExceeded ? { reason: 'budget_exceeded' } : {};
        await this.writer.append([...opening.splice(0), ...this.tools.interruptedResults(turn), { type: 'turn.failed', data: { turnId, error: message, ...reason, usage } }], NO_TURN_RUNNING);
      }
    } finally {
      this.turnAbort = undefined;
      this.tools.reset();
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
      await this.writer.append([ended], NO_TURN_RUNNING, { ifHead: this.writer.state.headSeq });
      return true;
    } catch (error) {
      if (!(error instanceof LogError && error.kind === 'conflict')) throw error;
      await this.afterConflict();
      return this.completed(turn);
    }
  }

  /**
   * A write conditional on the log's head lost to another writer's append. When catching
   * up does not show that append, it is under way and not yet readable: let it land
   * before looking again. Looking again at once would be all microtasks, and the log's
   * next batch (which holds it) could never be written.
   */
  private async afterConflict(): Promise<void> {
    const before = this.writer.state.headSeq;
    await this.writer.catchUp();
    if (this.writer.state.headSeq === before) await delay(APPEND_LANDING_MS);
  }

  /**
   * Writes a reply that asked for no tool. With turn.completed in the same durable write
   * when no steered input waits for an answer, and only if the log is where the fold is:
   * input steered in meanwhile makes it a conflict. Otherwise the reply alone, and the
   * turn goes on (see completed).
   */
  private async answerAndComplete(turn: Turn, answer: NewKnownEvent, reply: { stopReason: string | null; usage: Usage }): Promise<boolean> {
    // The call's model.requested (not awaited) is folded first: the steers it carried are marked.
    await this.writer.settleUnawaited();
    if (undeliveredSteers(turn).length === 0) {
      const usage = this.turnUsage({ usage: sumUsage(turn.usage, reply.usage) });
      const ended: NewKnownEvent = { type: 'turn.completed', data: { turnId: turn.turnId, stopReason: reply.stopReason, usage } };
      try {
        await this.writer.append([answer, ended], { usage: this.config.usage, ...NO_TURN_RUNNING }, { ifHead: this.writer.state.headSeq });
        return true;
      } catch (error) {
        if (!(error instanceof LogError && error.kind === 'conflict')) throw error;
      }
    }
    await this.writer.append([answer], { usage: this.config.usage });
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
        this.firstOutput.sent();
        if (!record) return;
        const first = opening();
        const carried = steers.length > 0 ? { steers } : {};
        const events: NewKnownEvent[] = [...first, { type: 'model.requested', data: { turnId, model: this.config.model, attempt, ...carried } }];
        const patch = first.length ? { status: 'running', runningTurn: turnId } : undefined;
        // Not waited for: a model call lost with its model.requested is made again on wake,
        // as it is when the record survives (see the design doc on durable points). With
        // other daemons on the log it is: a write cut off with its connection may still
        // land, and the lease hand-over reads the session's status from it.
        if (this.deps.log.supports.sharedWriters) return this.writer.append(events, patch);
        this.writer.appendUnawaited(events, patch);
        // One macrotask before the request: the log's group commit takes the write (and a
        // prompt's message not yet durable, in the same batch) to its fsync first, which
        // then runs beside the SDK's work instead of after it.
        await new Promise<void>((resolve) => setImmediate(resolve));
      },
      onRetry: (attempt, reason, delayMs) => {
        this.firstOutput.passed(); // nothing in flight while it backs off
        return this.writer.append([{ type: 'model.retry', data: { turnId, attempt, reason, delayMs } }]);
      },
      onDelta: (kind, index, text) => {
        this.firstOutput.passed();
        if (!record) return;
        this.writer.delta(() => this.deps.delta(this.config.sessionId, turnId, kind, index, text));
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
    await this.deps.budget.reserve(`${sessionId}:${key}`, reservationFor(prices, model, estimateTokens(request), request.max_tokens), [signal, this.drainAbort.signal]);
    let used = ZERO_USAGE;
    try {
      const reply = await callModel(await this.deps.model(), request, hooks, signal, this.deps.retry);
      used = reply.usage;
      return reply;
    } finally {
      this.firstOutput.passed();
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

  /**
   * The request to send: `request` itself, or, when it would pass the budget, the one
   * built after the finished turns in context were summarised.
   */
  private async compactIfNeeded(turn: Turn, request: ModelRequest, signal: AbortSignal): Promise<ModelRequest> {
    const options = this.contextOptions();
    if (estimateTokens(request) <= this.config.contextBudget) return request;
    const done = contextTurns(this.writer.state).filter((t) => t !== turn && t.end);
    const lastDone = done.at(-1);
    if (!lastDone?.end) return request;
    const reply = await this.callModel(`${turn.turnId}:${turn.steps.length}:summary`, buildSummaryRequest(this.writer.state, done, options), this.hooks(turn.turnId, false), signal);
    this.addUsage(reply.usage);
    const summary = reply.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n').trim();
    if (!summary) return request;
    await this.writer.append([{ type: 'context.compacted', data: { upToSeq: lastDone.end.seq, summary, turns: done.length, usage: reply.usage } }], { usage: this.config.usage });
    return buildRequest(this.writer.state, options);
  }
}
