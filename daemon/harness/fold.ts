import type { ContentBlock, PermissionDecision, PromptContent } from '../../protocol/index.js';
import type { StoredEvent } from '../log/session-log.js';

/** A tool call the model asked for, and how far it got, as the log tells it. */
export interface ToolCall {
  toolUseId: string;
  name: string;
  input: Record<string, unknown>;
  /** seq of tool.started, if it started. */
  startedSeq?: number;
  result?: { content: ContentBlock[]; isError: boolean; errorKind?: string };
  permission?: { requestedSeq: number; decision?: PermissionDecision; by?: string };
}

/** One model reply within a turn, with the tool calls it made. */
export interface TurnStep {
  seq: number;
  content: ContentBlock[];
  stopReason: string | null;
  calls: ToolCall[];
}

export interface Turn {
  turnId: string;
  userSeq: number;
  content: PromptContent;
  started: boolean;
  /** model.requested seen after the last assistant message: a call was in flight. */
  modelInFlight: boolean;
  steps: TurnStep[];
  end?: { kind: 'completed' | 'interrupted' | 'failed'; seq: number };
}

export interface SessionState {
  headSeq: number;
  /** In the order their user messages were appended. */
  turns: Turn[];
  compaction?: { upToSeq: number; summary: string; seq: number };
  /** Tools the user allowed for good with allow_always. */
  alwaysAllowed: Set<string>;
}

/**
 * Rebuilds a session's state from its log alone: everything the harness needs to
 * carry on after any crash. Events are applied one at a time, so the harness keeps
 * the fold current as it appends instead of re-reading the log. The log is never
 * rewritten.
 */
export class SessionFold {
  readonly state: SessionState = { headSeq: 0, turns: [], alwaysAllowed: new Set() };
  private readonly turns = new Map<string, Turn>();
  private readonly calls = new Map<string, ToolCall>();

  apply(event: StoredEvent): void {
    const state = this.state;
    state.headSeq = event.seq + 1;
    const d = event.data as Record<string, unknown>;
    const turn = typeof d.turnId === 'string' ? this.turns.get(d.turnId) : undefined;
    const call = typeof d.toolUseId === 'string' ? this.calls.get(d.toolUseId) : undefined;
    switch (event.type) {
      case 'user.message': {
        const t: Turn = { turnId: String(d.turnId), userSeq: event.seq, content: d.content as PromptContent, started: false, modelInFlight: false, steps: [] };
        this.turns.set(t.turnId, t);
        state.turns.push(t);
        break;
      }
      case 'turn.started':
        if (turn) turn.started = true;
        break;
      case 'model.requested':
        if (turn) turn.modelInFlight = true;
        break;
      case 'assistant.message': {
        if (!turn) break;
        const content = d.content as ContentBlock[];
        const stepCalls: ToolCall[] = [];
        for (const block of content) {
          if (block.type !== 'tool_use') continue;
          const c: ToolCall = { toolUseId: block.id, name: block.name, input: block.input };
          this.calls.set(block.id, c);
          stepCalls.push(c);
        }
        turn.steps.push({ seq: event.seq, content, stopReason: (d.stopReason as string | null) ?? null, calls: stepCalls });
        turn.modelInFlight = false;
        break;
      }
      case 'permission.requested':
        if (call) call.permission = { requestedSeq: event.seq };
        break;
      case 'permission.resolved': {
        const decision = d.decision as PermissionDecision;
        if (call?.permission) {
          call.permission.decision = decision;
          call.permission.by = String(d.by);
        }
        if (call && decision === 'allow_always') state.alwaysAllowed.add(call.name);
        break;
      }
      case 'tool.started':
        if (call) call.startedSeq = event.seq;
        break;
      case 'tool.result':
        if (call) {
          call.result = {
            content: d.content as ContentBlock[],
            isError: Boolean(d.isError),
            ...(typeof d.errorKind === 'string' ? { errorKind: d.errorKind } : {}),
          };
        }
        break;
      case 'turn.completed':
      case 'turn.interrupted':
      case 'turn.failed':
        if (turn && !turn.end) turn.end = { kind: event.type.slice('turn.'.length) as 'completed' | 'interrupted' | 'failed', seq: event.seq };
        break;
      case 'context.compacted':
        state.compaction = { upToSeq: Number(d.upToSeq), summary: String(d.summary), seq: event.seq };
        break;
    }
  }
}

export function foldSession(events: readonly StoredEvent[]): SessionState {
  const fold = new SessionFold();
  for (const event of events) fold.apply(event);
  return fold.state;
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
