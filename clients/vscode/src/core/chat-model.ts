import type { Event } from '../../../../protocol/index.js';
import { weakerIsolation } from '../../../lib/isolation.js';
import type { Delta } from './connection.js';

export type ToolErrorKind = 'sandbox_lost' | 'interrupted' | 'timeout' | 'denied' | 'tool_error';

export interface ToolResultView {
  text: string;
  isError: boolean;
  errorKind?: ToolErrorKind;
  durationMs?: number;
}

export type ChatItem =
  | { kind: 'user'; key: string; seq: number; text: string }
  | { kind: 'assistant'; key: string; seq?: number; text: string; streaming: boolean }
  | {
      kind: 'tool';
      key: string;
      seq?: number;
      toolUseId?: string;
      name: string;
      /** Pretty JSON of the input, or the raw fragments while it streams. */
      input: string;
      streaming: boolean;
      state: 'requested' | 'running' | 'done' | 'error';
      where?: string;
      permission?: { state: 'asked' | 'allow' | 'deny' | 'allow_always'; by?: string };
      result?: ToolResultView;
    }
  | { kind: 'notice'; key: string; seq: number; level: 'info' | 'warning' | 'error'; text: string };

export type ChatStatus = 'idle' | 'running' | 'waiting' | 'archived';

export interface ChatView {
  sessionId: string;
  title?: string;
  workspace?: string;
  forkedFrom?: { sessionId: string; at: number };
  status: ChatStatus;
  /** Every event before this seq is reflected. */
  next: number;
  items: ChatItem[];
}

type ToolItem = Extract<ChatItem, { kind: 'tool' }>;

/**
 * Turns a session's durable events and the ephemeral deltas of its running turn into a
 * conversation: user messages, assistant text (streaming until its durable copy
 * arrives), tool calls with input and result, and marked errors. Events are applied in
 * seq order exactly once; replays and old events are ignored.
 */
export class ChatModel {
  private readonly items: ChatItem[] = [];
  private readonly tools = new Map<string, ToolItem>();
  /** Streaming fragments of the current model call, by content block index. */
  private readonly streaming = new Map<number, { turnId: string; kind: Delta['kind']; text: string }>();
  /**
   * Turns that have ended: a delta of theirs arriving late (from another daemon, deltas
   * and events travel apart) must not show a streaming copy after the durable text.
   */
  private readonly endedTurns = new Set<string>();
  private status: ChatStatus = 'idle';
  private next = 0;
  private title: string | undefined;
  private workspace: string | undefined;
  private forkedFrom: { sessionId: string; at: number } | undefined;
  private archived = false;

  constructor(readonly sessionId: string) {}

  get nextSeq(): number {
    return this.next;
  }

  applyEvents(events: Event[]): void {
    for (const event of events) {
      if (event.seq < this.next) continue;
      this.next = event.seq + 1;
      this.apply(event);
    }
  }

  applyDelta(delta: Delta): void {
    if (delta.sessionId !== this.sessionId || this.endedTurns.has(delta.turnId)) return;
    const part = this.streaming.get(delta.index);
    if (part && part.turnId === delta.turnId && part.kind === delta.kind) part.text += delta.text;
    else this.streaming.set(delta.index, { turnId: delta.turnId, kind: delta.kind, text: delta.text });
  }

  view(): ChatView {
    const items = [...this.items];
    for (const [index, part] of [...this.streaming].sort((a, b) => a[0] - b[0])) {
      const key = `stream:${part.turnId}:${index}`;
      if (part.kind === 'text') items.push({ kind: 'assistant', key, text: part.text, streaming: true });
      else items.push({ kind: 'tool', key, name: 'tool call', input: part.text, streaming: true, state: 'requested' });
    }
    return {
      sessionId: this.sessionId,
      ...(this.title !== undefined ? { title: this.title } : {}),
      ...(this.workspace !== undefined ? { workspace: this.workspace } : {}),
      ...(this.forkedFrom ? { forkedFrom: this.forkedFrom } : {}),
      status: this.archived ? 'archived' : this.status,
      next: this.next,
      items,
    };
  }

  /** `part` tells apart several notices of one event (their keys must differ). */
  private notice(seq: number, level: 'info' | 'warning' | 'error', text: string, part = ''): void {
    this.items.push({ kind: 'notice', key: `e${seq}${part}`, seq, level, text });
  }

  private apply(event: Event): void {
    const d = event.data as Record<string, any>;
    const seq = event.seq;
    switch (event.type) {
      case 'session.created':
        this.title = typeof d.title === 'string' ? d.title : undefined;
        this.workspace = typeof d.workspace === 'string' ? d.workspace : undefined;
        if (d.forkedFrom) {
          this.forkedFrom = d.forkedFrom;
          this.notice(seq, 'info', `Forked from ${d.forkedFrom.sessionId} at event ${d.forkedFrom.at}`);
        }
        break;
      case 'session.forked':
        this.notice(seq, 'info', `Forked from ${d.from} at event ${d.at}`);
        break;
      case 'user.message':
        this.items.push({ kind: 'user', key: `e${seq}`, seq, text: contentText(d.content) });
        if (this.status === 'idle') this.status = 'running';
        break;
      case 'turn.started':
        this.status = 'running';
        break;
      case 'model.retry':
        this.notice(seq, 'warning', `Model call failed (${d.reason}); retry ${d.attempt} in ${Math.round(Number(d.delayMs) / 100) / 10} s`);
        break;
      case 'assistant.message':
        this.streaming.clear();
        for (const [i, block] of (d.content as Array<Record<string, any>>).entries()) {
          if (block.type === 'text' && block.text) this.items.push({ kind: 'assistant', key: `e${seq}:${i}`, seq, text: block.text, streaming: false });
          if (block.type === 'tool_use') {
            const item: ToolItem = { kind: 'tool', key: `t${block.id}`, seq, toolUseId: block.id, name: block.name, input: pretty(block.input), streaming: false, state: 'requested' };
            this.tools.set(block.id, item);
            this.items.push(item);
          }
        }
        break;
      case 'tool.started': {
        const tool = this.tool(d.toolUseId, d.name, d.input, seq);
        tool.state = 'running';
        tool.where = d.where;
        break;
      }
      case 'permission.requested':
        this.tool(d.toolUseId, d.tool, d.input, seq).permission = { state: 'asked' };
        this.status = 'waiting';
        break;
      case 'permission.resolved':
        this.tool(d.toolUseId, 'tool', {}, seq).permission = { state: d.decision, by: d.by };
        this.status = 'running';
        break;
      case 'tool.result': {
        const tool = this.tool(d.toolUseId, 'tool', {}, seq);
        tool.result = {
          text: contentText(d.content),
          isError: Boolean(d.isError),
          ...(d.errorKind ? { errorKind: d.errorKind } : d.isError ? { errorKind: 'tool_error' as const } : {}),
          ...(typeof d.durationMs === 'number' ? { durationMs: d.durationMs } : {}),
        };
        tool.state = d.isError ? 'error' : 'done';
        break;
      }
      case 'sandbox.provisioned': {
        this.notice(seq, 'info', `Sandbox ready (${d.isolation}, ${Math.round(Number(d.durationMs))} ms)`);
        // Never silently weaker: each warning as its own marked notice.
        weakerIsolation(d).forEach((warning, i) => this.notice(seq, 'warning', `Weaker isolation: ${warning}`, `w${i}`));
        break;
      }
      case 'sandbox.lost':
        this.notice(seq, 'error', `Sandbox lost: ${d.reason}. The next tool call gets a fresh sandbox; the workspace is kept.`);
        break;
      case 'harness.woke':
        if (d.pendingTurn) this.notice(seq, 'info', 'The agent resumed this turn from the log');
        break;
      case 'context.compacted':
        this.notice(seq, 'info', `Older context compacted (up to event ${d.upToSeq})`);
        break;
      case 'turn.completed':
        this.endTurn(d.turnId);
        break;
      case 'turn.interrupted':
        this.endTurn(d.turnId);
        this.notice(seq, 'warning', 'Interrupted');
        break;
      case 'turn.failed':
        this.endTurn(d.turnId);
        this.notice(seq, 'error', `Turn failed: ${d.error}`);
        break;
      case 'session.archived':
        this.archived = true;
        this.notice(seq, 'info', 'Archived: read-only from here on');
        break;
      default:
        break; // types this client does not know yet
    }
  }

  private endTurn(turnId: unknown): void {
    this.streaming.clear();
    if (typeof turnId === 'string') this.endedTurns.add(turnId);
    this.status = 'idle';
  }

  /** The tool item of a call; one made up from the event when its assistant message is not in view (a fork, a partial log). */
  private tool(toolUseId: string, name: string, input: unknown, seq: number): ToolItem {
    let tool = this.tools.get(toolUseId);
    if (!tool) {
      tool = { kind: 'tool', key: `t${toolUseId}`, seq, toolUseId, name, input: pretty(input), streaming: false, state: 'requested' };
      this.tools.set(toolUseId, tool);
      this.items.push(tool);
    }
    return tool;
  }
}

function pretty(value: unknown): string {
  return JSON.stringify(value ?? {}, null, 2);
}

/** Text of a content value: a string, or blocks of which text is shown and images are named. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((block: Record<string, any>) => {
      if (block.type === 'text') return String(block.text);
      if (block.type === 'image') return '[image]';
      if (block.type === 'tool_result') return contentText(block.content);
      return '';
    })
    .filter((t) => t !== '')
    .join('\n');
}
