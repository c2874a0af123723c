import { trustedEvent, type ContentBlock, type KnownEvent, type PermissionDecision, type PromptContent, type ToolErrorKind, type Usage } from '../../protocol/index.js';
import type { Checkpoint, StoredEvent } from '../log/session-log.js';
import { sumUsage, ZERO_USAGE } from './usage.js';

/** A tool call the model asked for, and how far it got, as the log tells it. */
export interface ToolCall {
  toolUseId: string;
  name: string;
  input: Record<string, unknown>;
  /** seq of tool.started, if it started. */
  startedSeq?: number;
  /** An `agent` call: the sub-agent session it runs in. */
  childSessionId?: string;
  result?: { content: ContentBlock[]; isError: boolean; errorKind?: ToolErrorKind };
  permission?: { requestedSeq: number; decision?: PermissionDecision; by?: string };
}

/** One model reply within a turn, with the tool calls it made. */
export interface TurnStep {
  seq: number;
  content: ContentBlock[];
  stopReason: string | null;
  calls: ToolCall[];
}

/** User input that joined a running turn (session/steer). */
export interface Steer {
  seq: number;
  content: PromptContent;
  /** How many steps the turn had when a model call first carried it; unset until one did. */
  at?: number;
}

export interface Turn {
  turnId: string;
  userSeq: number;
  content: PromptContent;
  started: boolean;
  /** model.requested seen after the last assistant message: a call was in flight. */
  modelInFlight: boolean;
  steps: TurnStep[];
  steers: Steer[];
  /** What the turn's model calls used, its compaction included. */
  usage: Usage;
  end?: { kind: (typeof TURN_ENDS)[keyof typeof TURN_ENDS]; seq: number };
}

export interface SessionState {
  headSeq: number;
  /** In the order their user messages were appended. */
  turns: Turn[];
  compaction?: { upToSeq: number; summary: string; seq: number };
  /** Tools the user allowed for good with allow_always. */
  alwaysAllowed: Set<string>;
  /** Turns taken out of the context by session/rollback (still in the log). */
  rolledBack: Set<string>;
  title?: string;
  /** Sub-agent sessions this session started, oldest first. */
  children: string[];
}

const TURN_ENDS = { 'turn.completed': 'completed', 'turn.interrupted': 'interrupted', 'turn.failed': 'failed' } as const;

/**
 * The checkpoint format this fold writes and reads; any other falls back to a full fold.
 * 2: turns carry steers and usage; rolled-back turns, the title and sub-agents are kept.
 */
export const CHECKPOINT_FORMAT = 'agentd.fold/2';

interface CheckpointBody {
  format: typeof CHECKPOINT_FORMAT;
  headSeq: number;
  turns: Turn[];
  compaction?: SessionState['compaction'];
  alwaysAllowed: string[];
  rolledBack: string[];
  title?: string;
  children: string[];
}

/**
 * Rebuilds a session's state from its log alone: everything the harness needs to
 * carry on after any crash. Events are applied one at a time, so the harness keeps
 * the fold current as it appends instead of re-reading the log. The log is never
 * rewritten. An event this harness does not know (a newer daemon's type) moves the
 * head and nothing else.
 */
export class SessionFold {
  readonly state: SessionState = { headSeq: 0, turns: [], alwaysAllowed: new Set(), rolledBack: new Set(), children: [] };
  private readonly turns = new Map<string, Turn>();
  private readonly calls = new Map<string, ToolCall>();

  apply(stored: StoredEvent): void {
    this.state.headSeq = stored.seq + 1;
    // Our own log: every event in it passed its schema when written (see trustedEvent).
    const event = trustedEvent(stored);
    if (event) this.applyKnown(event);
  }

  /** The state as a checkpoint: covers events [0, headSeq). */
  checkpoint(): Checkpoint {
    const { headSeq, turns, compaction, alwaysAllowed, rolledBack, title, children } = this.state;
    const body: CheckpointBody = {
      format: CHECKPOINT_FORMAT,
      headSeq,
      turns,
      ...(compaction ? { compaction } : {}),
      alwaysAllowed: [...alwaysAllowed],
      rolledBack: [...rolledBack],
      ...(title !== undefined ? { title } : {}),
      children,
    };
    return { seq: headSeq, state: JSON.stringify(body) };
  }

  /**
   * The fold a checkpoint holds, or undefined when it is of another format (an older or
   * newer daemon's), does not parse, or does not say what it covers: the caller then
   * folds the whole log, which gives the same state.
   */
  static fromCheckpoint(checkpoint: Checkpoint): SessionFold | undefined {
    let body: Partial<CheckpointBody>;
    try {
      body = JSON.parse(checkpoint.state) as Partial<CheckpointBody>;
    } catch {
      return undefined;
    }
    if (
      body?.format !== CHECKPOINT_FORMAT ||
      body.headSeq !== checkpoint.seq ||
      !Array.isArray(body.turns) ||
      !Array.isArray(body.alwaysAllowed) ||
      !Array.isArray(body.rolledBack) ||
      !Array.isArray(body.children)
    ) {
      return undefined;
    }
    const fold = new SessionFold();
    const { state } = fold;
    state.headSeq = body.headSeq;
    state.turns = body.turns;
    if (body.compaction) state.compaction = body.compaction;
    state.alwaysAllowed = new Set(body.alwaysAllowed);
    state.rolledBack = new Set(body.rolledBack);
    if (body.title !== undefined) state.title = body.title;
    state.children = body.children;
    for (const turn of state.turns) {
      fold.turns.set(turn.turnId, turn);
      for (const step of turn.steps) for (const call of step.calls) fold.calls.set(call.toolUseId, call);
    }
    return fold;
  }

  private applyKnown(event: KnownEvent): void {
    const { state } = this;
    switch (event.type) {
      case 'session.created':
      case 'session.renamed':
        if (event.data.title !== undefined) state.title = event.data.title;
        break;
      case 'user.message':
        this.addTurn(event.data.turnId, event.seq, event.data.content);
        break;
      case 'user.steer': {
        // Joins its turn only while that turn runs; after it ended, it is a turn of its own.
        const joined = this.turns.get(event.data.joins);
        if (joined && !joined.end) joined.steers.push({ seq: event.seq, content: event.data.content });
        else this.addTurn(event.data.turnId, event.seq, event.data.content);
        break;
      }
      case 'turn.started': {
        const turn = this.turns.get(event.data.turnId);
        if (turn) turn.started = true;
        break;
      }
      case 'model.requested': {
        const turn = this.turns.get(event.data.turnId);
        if (!turn) break;
        turn.modelInFlight = true;
        for (const steer of turn.steers) if (steer.at === undefined && event.data.steers?.includes(steer.seq)) steer.at = turn.steps.length;
        break;
      }
      case 'assistant.message': {
        const turn = this.turns.get(event.data.turnId);
        if (!turn) break;
        const { content, stopReason } = event.data;
        const calls: ToolCall[] = [];
        for (const block of content) {
          if (block.type !== 'tool_use') continue;
          const call: ToolCall = { toolUseId: block.id, name: block.name, input: block.input };
          this.calls.set(block.id, call);
          calls.push(call);
        }
        turn.steps.push({ seq: event.seq, content, stopReason, calls });
        turn.modelInFlight = false;
        turn.usage = sumUsage(turn.usage, event.data.usage);
        break;
      }
      case 'permission.requested': {
        const call = this.calls.get(event.data.toolUseId);
        if (call) call.permission = { requestedSeq: event.seq };
        break;
      }
      case 'permission.resolved': {
        const call = this.calls.get(event.data.toolUseId);
        const { decision, by } = event.data;
        if (call?.permission) Object.assign(call.permission, { decision, by });
        if (call && decision === 'allow_always') state.alwaysAllowed.add(call.name);
        break;
      }
      case 'tool.started': {
        const call = this.calls.get(event.data.toolUseId);
        if (call) call.startedSeq = event.seq;
        const child = event.data.childSessionId;
        if (call && child) call.childSessionId = child;
        if (child && !state.children.includes(child)) state.children.push(child);
        break;
      }
      case 'tool.result': {
        const call = this.calls.get(event.data.toolUseId);
        const { content, isError, errorKind } = event.data;
        if (call) call.result = { content, isError, ...(errorKind ? { errorKind } : {}) };
        // A sub-agent's usage is its parent turn's.
        const turn = this.turns.get(event.data.turnId);
        if (turn && event.data.usage) turn.usage = sumUsage(turn.usage, event.data.usage);
        break;
      }
      case 'turn.completed':
      case 'turn.interrupted':
      case 'turn.failed': {
        const turn = this.turns.get(event.data.turnId);
        if (turn && !turn.end) turn.end = { kind: TURN_ENDS[event.type], seq: event.seq };
        break;
      }
      case 'context.compacted': {
        state.compaction = { upToSeq: event.data.upToSeq, summary: event.data.summary, seq: event.seq };
        // Compaction runs inside the pending turn: its cost is that turn's.
        const turn = pendingTurn(state);
        if (turn && event.data.usage) turn.usage = sumUsage(turn.usage, event.data.usage);
        this.forgetCompacted(event.data.upToSeq);
        break;
      }
      case 'session.rolled_back':
        for (const turnId of event.data.turnIds) state.rolledBack.add(turnId);
        break;
    }
  }

  private addTurn(turnId: string, userSeq: number, content: PromptContent): void {
    const turn: Turn = { turnId, userSeq, content, started: false, modelInFlight: false, steps: [], steers: [], usage: ZERO_USAGE };
    this.turns.set(turnId, turn);
    this.state.turns.push(turn);
  }

  /**
   * Turns the summary replaced are never read again (the context leaves them out, and
   * they have ended): dropped, so a session's memory is bounded by its context, not its history.
   */
  private forgetCompacted(upToSeq: number): void {
    const { state } = this;
    const kept: Turn[] = [];
    for (const turn of state.turns) {
      if (!(turn.end && turn.end.seq <= upToSeq)) {
        kept.push(turn);
        continue;
      }
      this.turns.delete(turn.turnId);
      state.rolledBack.delete(turn.turnId);
      for (const step of turn.steps) for (const call of step.calls) this.calls.delete(call.toolUseId);
    }
    state.turns = kept;
  }
}

/** Steers no model call has carried yet: the turn's next call carries them. */
export function undeliveredSteers(turn: Turn): Steer[] {
  return turn.steers.filter((s) => s.at === undefined);
}

/** Steers no reply has answered yet: carried by no call, or by the call whose reply is not in the log. */
export function unansweredSteers(turn: Turn): Steer[] {
  return turn.steers.filter((s) => s.at === undefined || s.at >= turn.steps.length);
}

/** The first turn that has not ended: the one the harness must carry on. */
export function pendingTurn(state: SessionState): Turn | undefined {
  return state.turns.find((t) => !t.end);
}

/** Tool calls of the turn's last assistant message that have no result yet. */
export function openCalls(turn: Turn): ToolCall[] {
  const last = turn.steps.at(-1);
  return last ? last.calls.filter((c) => !c.result) : [];
}
