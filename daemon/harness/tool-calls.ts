/**
 * The tool calls of a turn: each open call of the model's last reply gets exactly one
 * result, whether it runs in the sandbox, on a remote MCP server, or as a sub-agent
 * (`agent` calls, side by side), asking permission where the policy says so.
 */
import type { PermissionQuestion, ToolErrorKind, Usage } from '../../protocol/index.js';
import type { NewKnownEvent } from '../../protocol/index.js';
import { openCalls, type ToolCall, type Turn } from './fold.js';
import { decide } from './policy.js';
import type { ToolSlot } from './sandbox-slot.js';
import type { RemoteMcpServers } from './remote-mcp.js';
import type { SessionWriter } from './session-writer.js';
import type { RunnerConfig, RunnerDeps } from './deps.js';
import { AGENT_TOOL_NAME, childResult, childSpec, type ChildOutcome, type ChildSpec } from './agent-tool.js';

/** The abort reason of a runner stopped as in a crash: nothing more is recorded. */
export const SHUTDOWN = 'shutdown';

/** What the tool calls need of their session's runner. */
export interface ToolHost {
  readonly deps: RunnerDeps;
  readonly config: RunnerConfig;
  readonly slot: ToolSlot;
  readonly remote: RemoteMcpServers;
  readonly writer: SessionWriter;
  /** Draining: the call under way finishes and is recorded, nothing new starts. */
  isDraining(): boolean;
  isStopped(): boolean;
  /** Aborts when the runner drains: a wait for an answer or a sub-agent ends. */
  readonly drainSignal: AbortSignal;
  /** The tool call running now: what a connection the sandbox makes is attributed to. */
  setRunning(running: { turnId: string; toolUseId?: string }): void;
  /** Adds what a sub-agent used to the session's usage. */
  addUsage(usage: Usage): void;
}

export class ToolCalls {
  /** Calls whose tool.started was written with the event before, not yet run. */
  private readonly launchedCalls = new Set<string>();

  constructor(private readonly host: ToolHost) {}

  /** The turn ended: calls launched and not run are the next runner's to find in the log. */
  reset(): void {
    this.launchedCalls.clear();
  }

  async settle(turn: Turn, signal: AbortSignal): Promise<void> {
    const open = openCalls(turn);
    const agents = this.offers(AGENT_TOOL_NAME) ? open.filter((c) => c.name === AGENT_TOOL_NAME) : [];
    await this.settleAgentCalls(turn, agents, signal);
    const calls = open.filter((c) => !agents.includes(c));
    for (const [i, call] of calls.entries()) {
      // Recorded as started by this runner with the write before (see launch): it runs now, drain or not.
      const launched = this.launchedCalls.delete(call.toolUseId);
      if (signal.aborted || (this.host.isDraining() && !launched)) return;
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
        if (signal.aborted || this.host.isDraining()) return;
        await this.host.writer.append([this.toolStarted(turn.turnId, call)]);
        if (!this.offers(call.name)) {
          await this.appendResult(turn, call, `unknown tool ${call.name}`, 'tool_error', 0);
          continue;
        }
      }
      const started = performance.now();
      const remote = this.host.remote.owns(call.name);
      this.host.setRunning({ turnId: turn.turnId, toolUseId: call.toolUseId });
      const result = await (remote ? this.host.remote.call(call.name, call.input, signal) : this.host.slot.execute(call.name, call.input, signal)).finally(() => {
        this.host.setRunning({ turnId: turn.turnId });
      });
      if (signal.reason === SHUTDOWN) return;
      const next = calls[i + 1];
      const nextStarted = next && !signal.aborted ? this.launch(turn.turnId, next) : [];
      await this.host.writer.append([
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

  offers(tool: string): boolean {
    return this.host.config.tools.some((t) => t.name === tool);
  }

  private toolStarted(turnId: string, call: Pick<ToolCall, 'toolUseId' | 'name' | 'input'>): NewKnownEvent {
    return { type: 'tool.started', data: { turnId, toolUseId: call.toolUseId, name: call.name, input: call.input, where: this.host.remote.owns(call.name) ? 'daemon' : 'sandbox' } };
  }

  /**
   * tool.started for `call` to go in the write just before it, when nothing needs to
   * happen in between: the policy allows it without asking, the tool is known, and the
   * runner is not stopping. One fsync less per tool call; tool.started is still durable
   * before the tool runs. Empty otherwise (the call goes through settleOpenCalls' steps).
   */
  launch(turnId: string, call: Pick<ToolCall, 'toolUseId' | 'name' | 'input'>): NewKnownEvent[] {
    // An `agent` call is named its sub-agent in its tool.started: settleAgentCalls writes that.
    if (this.host.isDraining() || this.host.isStopped() || !this.offers(call.name) || call.name === AGENT_TOOL_NAME) return [];
    if (decide(this.host.config.permissions, this.host.writer.state.alwaysAllowed, call, this.host.config.workspace) !== 'allow') return [];
    return [this.toolStarted(turnId, call)];
  }

  /** Marks the calls whose tool.started was just written with another event. */
  launchedWith(events: NewKnownEvent[]): void {
    for (const event of events) if (event.type === 'tool.started') this.launchedCalls.add(event.data.toolUseId);
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
      if (signal.aborted || this.host.isDraining()) break;
      if (call.startedSeq === undefined) {
        if ((await this.permission(turn, call, signal)) === 'deny') {
          await this.appendResult(turn, call, `permission to run ${call.name} was denied`, 'denied', 0);
          continue;
        }
        if (signal.aborted || this.host.isDraining()) break;
        const childSessionId = this.host.deps.newSessionId();
        const started: NewKnownEvent = { type: 'tool.started', data: { turnId: turn.turnId, toolUseId: call.toolUseId, name: call.name, input: call.input, where: 'daemon', childSessionId } };
        await this.host.writer.append([started], { children: [...this.host.writer.state.children, childSessionId] });
      }
      const spec = childSpec(this.host.config.sessionId, call, this.host.config.tools);
      if (typeof spec === 'string') {
        await this.appendResult(turn, call, spec, 'tool_error', 0);
        continue;
      }
      // Draining, the wait ends but the sub-agent is left to reach its own durable point; the next daemon waits on.
      running.push(this.runAgentCall(turn, call, spec, AbortSignal.any([signal, this.host.drainSignal])));
    }
    await Promise.all(running);
  }

  private async runAgentCall(turn: Turn, call: ToolCall, spec: ChildSpec, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    const outcome = await this.host.deps.runChild(spec, signal).catch((error: unknown): ChildOutcome | undefined =>
      signal.aborted ? undefined : { text: `the sub-agent could not run: ${(error as Error)?.message ?? error}`, isError: true },
    );
    // Interrupted or stopped: the turn records (or a later daemon finds) what is still open.
    if (!outcome || signal.aborted) return;
    // Its turn ended: a reservation it left open (a crash between its reply and the settling) is spent.
    await this.host.deps.budget.release(spec.childSessionId);
    // What the sub-agent used is the parent's too: in its turn (the fold adds it) and its session, so its budget counts it.
    if (outcome.usage) this.host.addUsage(outcome.usage);
    const result = childResult(turn.turnId, call.toolUseId, outcome, Math.round(performance.now() - started));
    await this.host.writer.append([result], outcome.usage ? { usage: this.host.config.usage } : undefined);
  }

  private appendResult(turn: Turn, call: ToolCall, text: string, errorKind: ToolErrorKind, durationMs: number): Promise<void> {
    return this.host.writer.append([this.errorResult(turn, call, text, errorKind, durationMs)]);
  }

  private errorResult(turn: Turn, call: ToolCall, text: string, errorKind: ToolErrorKind, durationMs: number): NewKnownEvent {
    return {
      type: 'tool.result',
      data: { turnId: turn.turnId, toolUseId: call.toolUseId, content: [{ type: 'text', text }], isError: true, errorKind, durationMs },
    };
  }

  /** Results for the calls an interrupt (or failure) left open, so no tool_use is ever orphaned. */
  interruptedResults(turn: Turn): NewKnownEvent[] {
    return openCalls(turn).map((call) => this.errorResult(turn, call, 'interrupted before this tool finished', 'interrupted', 0));
  }

  private async permission(turn: Turn, call: ToolCall, signal: AbortSignal): Promise<'allow' | 'deny'> {
    const verdict = decide(this.host.config.permissions, this.host.writer.state.alwaysAllowed, call, this.host.config.workspace);
    if (verdict !== 'ask') return verdict;
    const known = call.permission?.decision;
    if (known) return known === 'deny' ? 'deny' : 'allow';
    const question: PermissionQuestion = {
      sessionId: this.host.config.sessionId,
      sessionTitle: this.host.writer.state.title ?? null,
      ...(this.host.config.parentSessionId ? { parentSessionId: this.host.config.parentSessionId } : {}),
      toolUseId: call.toolUseId,
      tool: call.name,
      input: call.input,
    };
    if (!call.permission) {
      await this.host.writer.append([{ type: 'permission.requested', data: { turnId: turn.turnId, toolUseId: call.toolUseId, tool: call.name, input: call.input } }], { status: 'waiting' });
    } else {
      await this.host.deps.log.patchMeta(this.host.config.sessionId, { status: 'waiting' });
    }
    const answer = await this.host.deps.askPermission(question, AbortSignal.any([signal, this.host.drainSignal]));
    await this.host.writer.append([{ type: 'permission.resolved', data: { turnId: turn.turnId, toolUseId: call.toolUseId, decision: answer.decision, by: answer.by } }], { status: 'running', runningTurn: turn.turnId });
    return answer.decision === 'deny' ? 'deny' : 'allow';
  }

  /**
   * The request to send: `request` itself, or, when it would pass the budget, the one
   * built after the finished turns in context were summarised.
   */
}
