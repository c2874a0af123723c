/**
 * The one fold of a session's events into what a UI shows: turns with the user's
 * message, the replies' text (streamed, then durable), tool calls with their status,
 * permission and result, the sandbox's notices, and how each turn ended. Every client
 * (terminal, editor, MCP, ACP, a browser) folds here and only renders what it gets.
 *
 * No I/O, no clock, nothing of Node's: events and deltas in, a transcript and the
 * changes each input made out. Events are narrowed with `knownEvent`; a type this
 * reader does not know (a newer daemon's), or data its schema refuses, comes back
 * untouched as an `unknown` change and changes nothing else.
 */
import { knownEvent, type Event, type EventOf, type KnownEvent, type PermissionDecision, type ToolErrorKind } from '../../protocol/events.js';
import type { ContentBlock, PromptContent } from '../../protocol/content.js';
import type { ParamsOf } from '../../protocol/define.js';
import type { SessionDeltaNotification } from '../../protocol/methods/events.js';

export type Delta = ParamsOf<typeof SessionDeltaNotification>;
export type ImageContent = Extract<ContentBlock, { type: 'image' }>;

/** Notices are the events themselves, typed: a renderer reads their data as the protocol defines it. */
export type Notice = EventOf<
  'sandbox.provisioned' | 'sandbox.lost' | 'model.retry' | 'context.compacted' | 'harness.woke' | 'session.forked' | 'session.archived' | 'session.rolled_back' | 'network.decided'
>;

export interface ToolResult {
  content: ContentBlock[];
  isError: boolean;
  /** Set whenever `isError` is: `tool_error` when the daemon named no other kind. */
  errorKind?: ToolErrorKind;
  durationMs: number;
}

/** One tool call as a UI shows it. */
export interface ToolUse {
  readonly toolUseId: string;
  name: string;
  input: Record<string, unknown>;
  /** The event that made it known: its reply (assistant.message), or a later event when the reply is not in view. */
  readonly seq: number;
  /** The model made other calls in the same reply: results should name their tool. */
  parallel: boolean;
  status: 'requested' | 'running' | 'done' | 'error';
  where?: 'sandbox' | 'daemon';
  permission?: { state: 'asked' } | { state: PermissionDecision; by: string };
  result?: ToolResult;
}

export type TurnItem =
  | { kind: 'text'; seq: number; text: string }
  | { kind: 'image'; seq: number; image: ImageContent }
  /** User input that joined the turn while it ran (session/steer). */
  | { kind: 'steer'; seq: number; content: PromptContent }
  | { kind: 'tool'; call: ToolUse }
  | { kind: 'notice'; notice: Notice };

export type TurnEnd = { kind: 'completed'; stopReason: string | null } | { kind: 'interrupted' } | { kind: 'failed'; error: string };

/** Text (or tool input) a model call in flight has streamed so far, for one content block. */
export interface StreamedBlock {
  index: number;
  kind: Delta['kind'];
  text: string;
}

export interface TranscriptTurn {
  readonly turnId: string;
  /** Seq of its first event in view (its user message, normally) and of its latest. */
  readonly firstSeq: number;
  lastSeq: number;
  user?: { seq: number; content: PromptContent };
  items: TurnItem[];
  /** The model call in flight, by content-block index; gone once its reply is durable or the turn ends. */
  streaming: StreamedBlock[];
  /** The latest reply's text and stop reason: the turn's answer so far. */
  reply?: { text: string; stopReason: string | null };
  end?: TurnEnd & { seq: number };
}

/** What a session is and where it came from: the header of every view of it. */
export interface SessionOrigin {
  workspace?: string;
  title?: string;
  forkedFrom?: { sessionId: string; at: number };
  /** A sub-agent: the session whose `agent` call started it. */
  parent?: { sessionId: string; toolUseId: string };
  /** The sub-agents this session started, oldest first. */
  children: string[];
}

export interface Transcript extends SessionOrigin {
  /** Every event before this seq is folded in. */
  next: number;
  model?: string;
  archived: boolean;
  /** In the order they came into view. */
  turns: TranscriptTurn[];
  /** Notices outside any turn (a fork, the archive, a sandbox lost between turns). */
  notices: Notice[];
}

/**
 * What one event or delta changed, for renderers that draw as things happen (a
 * terminal, ACP updates). `text` is new text of a reply: `fresh` starts a block (a
 * new paragraph), `streamed` says it came as a delta rather than from the durable
 * message (which only adds what the stream missed).
 */
export type TranscriptChange =
  | { kind: 'user'; turn: TranscriptTurn; content: PromptContent }
  | { kind: 'text'; turn: TranscriptTurn; text: string; fresh: boolean; streamed: boolean }
  | { kind: 'image'; turn: TranscriptTurn; image: ImageContent }
  | { kind: 'tool'; turn: TranscriptTurn; call: ToolUse; what: 'announced' | 'running' | 'asked' | 'answered' | 'result' }
  | { kind: 'notice'; turn: TranscriptTurn | undefined; notice: Notice }
  | { kind: 'ended'; turn: TranscriptTurn; end: TurnEnd }
  | { kind: 'unknown'; event: Event };

/** What folding one event did: the event narrowed (undefined when unknown), the turn it belongs to, the changes. */
export interface FoldStep {
  event: KnownEvent | undefined;
  turn: TranscriptTurn | undefined;
  changes: TranscriptChange[];
}

/** Turns not yet in view whose deltas are kept (a delta can overtake its turn's first event). */
const EARLY_TURNS_KEPT = 4;

export class TranscriptFold {
  readonly transcript: Transcript = { next: 0, children: [], archived: false, turns: [], notices: [] };
  /** Open network questions (permission.requested of kind network), by id. */
  private readonly networkQuestions = new Set<string>();
  private readonly turns = new Map<string, TranscriptTurn>();
  private readonly calls = new Map<string, { call: ToolUse; turn: TranscriptTurn }>();
  /** Deltas of turns not yet in view, applied when the turn appears. */
  private readonly early = new Map<string, Delta[]>();
  /** The turn of the latest event that named one and did not end it: where turnless notices go. */
  private current: TranscriptTurn | undefined;
  /** Turns the event being folded brought into view that have early deltas waiting. */
  private revealed: TranscriptTurn[] = [];

  /** Folds one event; events below `transcript.next` (already folded) change nothing. */
  event(raw: Event): FoldStep {
    if (raw.seq < this.transcript.next) return { event: undefined, turn: undefined, changes: [] };
    this.transcript.next = raw.seq + 1;
    const event = knownEvent(raw);
    if (!event) return { event, turn: undefined, changes: [{ kind: 'unknown', event: raw }] };
    const changes: TranscriptChange[] = [];
    const turn = this.apply(event, changes);
    if (turn) turn.lastSeq = Math.max(turn.lastSeq, event.seq);
    // Deltas that overtook the turn's first event, after it, in the order they came.
    for (const revealed of this.revealed.splice(0)) {
      const early = this.early.get(revealed.turnId) ?? [];
      this.early.delete(revealed.turnId);
      for (const delta of early) changes.push(...this.delta(delta));
    }
    return { event, turn, changes };
  }

  /** Folds events in order and returns every change they made. */
  events(events: readonly Event[]): TranscriptChange[] {
    return events.flatMap((event) => this.event(event).changes);
  }

  /**
   * Folds an ephemeral fragment of a model call in flight. Fragments of a turn not yet
   * in view wait for it; those of a turn that ended are late and dropped.
   */
  delta(delta: Delta): TranscriptChange[] {
    const turn = this.turns.get(delta.turnId);
    if (!turn) {
      const kept = this.early.get(delta.turnId) ?? [];
      this.early.delete(delta.turnId);
      this.early.set(delta.turnId, [...kept, delta]);
      if (this.early.size > EARLY_TURNS_KEPT) this.early.delete(this.early.keys().next().value!);
      return [];
    }
    if (turn.end) return [];
    let block = turn.streaming.find((b) => b.index === delta.index);
    const fresh = block === undefined || block.kind !== delta.kind;
    if (!block || block.kind !== delta.kind) {
      block = { index: delta.index, kind: delta.kind, text: '' };
      turn.streaming = [...turn.streaming.filter((b) => b.index !== delta.index), block].sort((a, b) => a.index - b.index);
    }
    block.text += delta.text;
    return delta.kind === 'text' && delta.text !== '' ? [{ kind: 'text', turn, text: delta.text, fresh, streamed: true }] : [];
  }

  /** The turn an event names, made when it is the first in view. */
  private turnFor(turnId: string, seq: number): TranscriptTurn {
    let turn = this.turns.get(turnId);
    if (!turn) {
      turn = { turnId, firstSeq: seq, lastSeq: seq, items: [], streaming: [] };
      this.turns.set(turnId, turn);
      this.transcript.turns.push(turn);
      if (this.early.has(turnId)) this.revealed.push(turn);
    }
    return turn;
  }

  private apply(event: KnownEvent, changes: TranscriptChange[]): TranscriptTurn | undefined {
    const t = this.transcript;
    switch (event.type) {
      case 'session.created':
        t.workspace = event.data.workspace;
        t.title = event.data.title;
        t.model = event.data.model;
        if (event.data.parent) t.parent = event.data.parent;
        return undefined;
      case 'session.forked':
        t.forkedFrom = { sessionId: event.data.from, at: event.data.at };
        t.workspace = event.data.workspace;
        return this.notice(undefined, event, changes);
      case 'session.archived':
        t.archived = true;
        return this.notice(undefined, event, changes);
      case 'session.renamed':
        t.title = event.data.title;
        return undefined;
      case 'session.rolled_back':
        return this.notice(undefined, event, changes);
      case 'user.message': {
        const turn = this.turnFor(event.data.turnId, event.seq);
        turn.user = { seq: event.seq, content: event.data.content };
        changes.push({ kind: 'user', turn, content: event.data.content });
        return turn;
      }
      case 'user.steer': {
        // As the daemon folds it: it joins its turn while that runs, else it is a turn of its own.
        const joined = this.turns.get(event.data.joins);
        if (joined && !joined.end) {
          joined.items.push({ kind: 'steer', seq: event.seq, content: event.data.content });
          changes.push({ kind: 'user', turn: joined, content: event.data.content });
          return joined;
        }
        const turn = this.turnFor(event.data.turnId, event.seq);
        turn.user = { seq: event.seq, content: event.data.content };
        changes.push({ kind: 'user', turn, content: event.data.content });
        return turn;
      }
      case 'turn.started':
        return this.running(event.data.turnId, event.seq);
      case 'model.requested': {
        // A new model call: what streams next belongs to it.
        const turn = this.running(event.data.turnId, event.seq);
        turn.streaming = [];
        return turn;
      }
      case 'model.retry': {
        const turn = this.running(event.data.turnId, event.seq);
        turn.streaming = [];
        return this.notice(turn, event, changes);
      }
      case 'assistant.message':
        return this.reply(event, changes);
      case 'tool.started': {
        const { call, turn } = this.call(event.data.turnId, event.data.toolUseId, event.data.name, event.data.input, event.seq, changes);
        call.status = 'running';
        call.where = event.data.where;
        const child = event.data.childSessionId;
        if (child && !this.transcript.children.includes(child)) this.transcript.children.push(child);
        changes.push({ kind: 'tool', turn, call, what: 'running' });
        return turn;
      }
      case 'permission.requested': {
        // A network question is no tool call: its outcome shows as the network.decided that follows.
        if (event.data.kind === 'network') return void this.networkQuestions.add(event.data.toolUseId);
        if (event.data.turnId === undefined) return undefined;
        const { call, turn } = this.call(event.data.turnId, event.data.toolUseId, event.data.tool, event.data.input, event.seq, changes);
        call.permission = { state: 'asked' };
        changes.push({ kind: 'tool', turn, call, what: 'asked' });
        return turn;
      }
      case 'permission.resolved': {
        if (this.networkQuestions.delete(event.data.toolUseId)) return undefined;
        const known = this.calls.get(event.data.toolUseId);
        const turnId = known?.turn.turnId ?? event.data.turnId;
        if (turnId === undefined) return undefined; // a question of a call out of view, in no turn we know
        const { call, turn } = known ?? this.call(turnId, event.data.toolUseId, 'tool', {}, event.seq, changes);
        call.permission = { state: event.data.decision, by: event.data.by };
        changes.push({ kind: 'tool', turn, call, what: 'answered' });
        return turn;
      }
      case 'tool.result': {
        const { call, turn } = this.call(event.data.turnId, event.data.toolUseId, 'tool', {}, event.seq, changes);
        const { content, isError, errorKind, durationMs } = event.data;
        call.result = { content, isError, durationMs, ...(errorKind ? { errorKind } : isError ? { errorKind: 'tool_error' as const } : {}) };
        call.status = isError ? 'error' : 'done';
        changes.push({ kind: 'tool', turn, call, what: 'result' });
        return turn;
      }
      case 'sandbox.provisioned':
      case 'sandbox.lost':
      case 'context.compacted':
      case 'network.decided':
        return this.notice(this.current, event, changes);
      case 'harness.woke': {
        if (event.data.pendingTurn === null) return undefined;
        return this.notice(this.running(event.data.pendingTurn, event.seq), event, changes);
      }
      case 'turn.completed':
        return this.ended(event.data.turnId, event.seq, { kind: 'completed', stopReason: event.data.stopReason }, changes);
      case 'turn.interrupted':
        return this.ended(event.data.turnId, event.seq, { kind: 'interrupted' }, changes);
      case 'turn.failed':
        return this.ended(event.data.turnId, event.seq, { kind: 'failed', error: event.data.error }, changes);
    }
  }

  /** A turn that is doing something now: turnless notices that follow are its. */
  private running(turnId: string, seq: number): TranscriptTurn {
    const turn = this.turnFor(turnId, seq);
    if (!turn.end) this.current = turn;
    return turn;
  }

  private notice(turn: TranscriptTurn | undefined, notice: Notice, changes: TranscriptChange[]): TranscriptTurn | undefined {
    if (turn) turn.items.push({ kind: 'notice', notice });
    else this.transcript.notices.push(notice);
    changes.push({ kind: 'notice', turn, notice });
    return turn;
  }

  /**
   * The durable reply. Its text blocks are matched in order with the blocks that
   * streamed (not by index: the stream may carry blocks the log does not keep); only
   * what the stream missed is new, or the whole block when what streamed was not its
   * start (fragments a lagging client never got).
   */
  private reply(event: EventOf<'assistant.message'>, changes: TranscriptChange[]): TranscriptTurn {
    const turn = this.running(event.data.turnId, event.seq);
    const streamed = turn.streaming.filter((b) => b.kind === 'text').map((b) => b.text);
    turn.streaming = [];
    const content = event.data.content;
    const calls = content.filter((b) => b.type === 'tool_use').length;
    let k = 0;
    for (const block of content) {
      if (block.type === 'text') {
        const shown = streamed[k++];
        if (block.text !== '') turn.items.push({ kind: 'text', seq: event.seq, text: block.text });
        if (shown !== undefined && block.text.startsWith(shown)) {
          if (block.text.length > shown.length) changes.push({ kind: 'text', turn, text: block.text.slice(shown.length), fresh: false, streamed: false });
        } else if (block.text !== '') {
          changes.push({ kind: 'text', turn, text: block.text, fresh: true, streamed: false });
        }
      } else if (block.type === 'image') {
        turn.items.push({ kind: 'image', seq: event.seq, image: block });
        changes.push({ kind: 'image', turn, image: block });
      } else if (block.type === 'tool_use') {
        const { call } = this.call(turn.turnId, block.id, block.name, block.input, event.seq, changes);
        call.parallel = calls > 1;
      }
    }
    turn.reply = {
      text: content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n'),
      stopReason: event.data.stopReason,
    };
    return turn;
  }

  /** The call by its id, announced when first in view (with what this event says of it). */
  private call(
    turnId: string,
    toolUseId: string,
    name: string,
    input: Record<string, unknown>,
    seq: number,
    changes: TranscriptChange[],
  ): { call: ToolUse; turn: TranscriptTurn } {
    const known = this.calls.get(toolUseId);
    if (known) return known;
    const turn = this.running(turnId, seq);
    const call: ToolUse = { toolUseId, name, input, seq, parallel: false, status: 'requested' };
    const entry = { call, turn };
    this.calls.set(toolUseId, entry);
    turn.items.push({ kind: 'tool', call });
    changes.push({ kind: 'tool', turn, call, what: 'announced' });
    return entry;
  }

  private ended(turnId: string, seq: number, end: TurnEnd, changes: TranscriptChange[]): TranscriptTurn {
    const turn = this.turnFor(turnId, seq);
    turn.end = { ...end, seq };
    turn.streaming = [];
    if (this.current === turn) this.current = undefined;
    changes.push({ kind: 'ended', turn, end });
    return turn;
  }
}

/** Folds a whole log at once: the transcript a UI would show after reading it. */
export function transcriptOf(events: readonly Event[], deltas: readonly Delta[] = []): Transcript {
  const fold = new TranscriptFold();
  fold.events(events);
  for (const delta of deltas) fold.delta(delta);
  return fold.transcript;
}

/** The status a transcript shows: archived, waiting for a permission answer, running a turn, or idle. */
export function transcriptStatus(t: Transcript): 'idle' | 'running' | 'waiting' | 'archived' {
  if (t.archived) return 'archived';
  const open = t.turns.filter((turn) => !turn.end);
  if (open.some((turn) => turn.items.some((i) => i.kind === 'tool' && i.call.permission?.state === 'asked'))) return 'waiting';
  return open.length > 0 ? 'running' : 'idle';
}
