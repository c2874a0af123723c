import type { ContentBlock, Event, PromptContent, ToolErrorKind } from '../../protocol/index.js';
import { weakerIsolation } from './isolation.js';
import { TranscriptFold, transcriptStatus, type Delta, type Notice, type SessionOrigin, type ToolUse, type Transcript, type TranscriptTurn } from './transcript.js';

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

export interface ChatView extends SessionOrigin {
  sessionId: string;
  status: ChatStatus;
  /** Every event before this seq is reflected. */
  next: number;
  items: ChatItem[];
}

/**
 * A session's conversation as a chat shows it (VS Code's chat panel, the web page): the
 * shared fold (clients/lib/transcript) does the folding of durable events and ephemeral
 * deltas; this only says how its transcript reads in a chat (items with stable keys,
 * notices in words).
 */
export class ChatModel {
  private readonly fold = new TranscriptFold();

  constructor(readonly sessionId: string) {}

  get nextSeq(): number {
    return this.fold.transcript.next;
  }

  applyEvents(events: Event[]): void {
    this.fold.events(events);
  }

  applyDelta(delta: Delta): void {
    if (delta.sessionId === this.sessionId) this.fold.delta(delta);
  }

  view(): ChatView {
    return chatView(this.sessionId, this.fold.transcript);
  }
}

/** The transcript as chat items: session notices and turns in the order they happened. */
function chatView(sessionId: string, t: Transcript): ChatView {
  const parts = [...t.notices.map((n) => ({ seq: n.seq, items: noticeItems(n) })), ...t.turns.map((turn) => ({ seq: turn.firstSeq, items: turnItems(turn) }))];
  return {
    sessionId,
    ...(t.title !== undefined ? { title: t.title } : {}),
    ...(t.workspace !== undefined ? { workspace: t.workspace } : {}),
    ...(t.forkedFrom ? { forkedFrom: t.forkedFrom } : {}),
    ...(t.parent ? { parent: t.parent } : {}),
    children: [...t.children],
    status: transcriptStatus(t),
    next: t.next,
    items: parts.sort((a, b) => a.seq - b.seq).flatMap((p) => p.items),
  };
}

function turnItems(turn: TranscriptTurn): ChatItem[] {
  const items: ChatItem[] = [];
  if (turn.user) items.push({ kind: 'user', key: `e${turn.user.seq}`, seq: turn.user.seq, text: contentText(turn.user.content) });
  turn.items.forEach((item, i) => {
    if (item.kind === 'text') items.push({ kind: 'assistant', key: `e${item.seq}:${i}`, seq: item.seq, text: item.text, streaming: false });
    else if (item.kind === 'tool') items.push(toolItem(item.call));
    else if (item.kind === 'notice') items.push(...noticeItems(item.notice));
    else if (item.kind === 'steer') items.push({ kind: 'user', key: `e${item.seq}`, seq: item.seq, text: contentText(item.content) });
  });
  // What the model call in flight streamed so far, until its durable copy arrives.
  for (const part of turn.streaming) {
    const key = `stream:${turn.turnId}:${part.index}`;
    if (part.kind === 'text') items.push({ kind: 'assistant', key, text: part.text, streaming: true });
    else items.push({ kind: 'tool', key, name: 'tool call', input: part.text, streaming: true, state: 'requested' });
  }
  if (turn.end?.kind === 'interrupted') items.push(notice(turn.end.seq, 'warning', 'Interrupted'));
  if (turn.end?.kind === 'failed') items.push(notice(turn.end.seq, 'error', `Turn failed: ${turn.end.error}`));
  return items;
}

function toolItem(call: ToolUse): ChatItem {
  const result = call.result;
  return {
    kind: 'tool',
    key: `t${call.toolUseId}`,
    seq: call.seq,
    toolUseId: call.toolUseId,
    name: call.name,
    input: JSON.stringify(call.input, null, 2),
    streaming: false,
    state: call.status,
    ...(call.where ? { where: call.where } : {}),
    ...(call.permission ? { permission: call.permission } : {}),
    ...(result
      ? { result: { text: contentText(result.content), isError: result.isError, durationMs: result.durationMs, ...(result.errorKind ? { errorKind: result.errorKind } : {}) } }
      : {}),
  };
}

/** `part` tells apart several notices of one event (their keys must differ). */
function notice(seq: number, level: 'info' | 'warning' | 'error', text: string, part = ''): ChatItem {
  return { kind: 'notice', key: `e${seq}${part}`, seq, level, text };
}

function noticeItems(n: Notice): ChatItem[] {
  switch (n.type) {
    case 'sandbox.provisioned':
      return [
        notice(n.seq, 'info', `Sandbox ready (${n.data.isolation}, ${Math.round(n.data.durationMs)} ms)`),
        // Never silently weaker: each warning as its own marked notice.
        ...weakerIsolation(n.data).map((warning, i) => notice(n.seq, 'warning', `Weaker isolation: ${warning}`, `w${i}`)),
      ];
    case 'sandbox.lost':
      return [notice(n.seq, 'error', `Sandbox lost: ${n.data.reason}. The next tool call gets a fresh sandbox; the workspace is kept.`)];
    case 'model.retry':
      return [notice(n.seq, 'warning', `Model call failed (${n.data.reason}); retry ${n.data.attempt} in ${Math.round(n.data.delayMs / 100) / 10} s`)];
    case 'context.compacted':
      return [notice(n.seq, 'info', `Older context compacted (up to event ${n.data.upToSeq})`)];
    case 'harness.woke':
      return [notice(n.seq, 'info', 'The agent resumed this turn from the log')];
    case 'session.forked':
      return [notice(n.seq, 'info', `Forked from ${n.data.from} at event ${n.data.at}`)];
    case 'session.archived':
      return [notice(n.seq, 'info', 'Archived: read-only from here on')];
    case 'session.rolled_back':
      return [notice(n.seq, 'info', `Rolled back ${n.data.turns} turn${n.data.turns === 1 ? '' : 's'}: the agent no longer sees them`)];
    case 'network.decided':
      return [
        n.data.decision === 'allow'
          ? notice(n.seq, 'info', `Network: reached ${n.data.host}:${n.data.port} (${n.data.reason})`)
          : notice(n.seq, 'warning', `Network: refused ${n.data.host}:${n.data.port} (${n.data.reason})`),
      ];
  }
}

/** Text of a content value: a string, or blocks of which text is shown and images are named. */
export function contentText(content: PromptContent | ContentBlock[]): string {
  if (typeof content === 'string') return content;
  return content
    .map((block) => {
      if (block.type === 'text') return block.text;
      if (block.type === 'image') return '[image]';
      if (block.type === 'tool_result') return contentText(block.content);
      return '';
    })
    .filter((t) => t !== '')
    .join('\n');
}
