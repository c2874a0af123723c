/**
 * One agentd session as the editor sees it: follows the session's log (and its
 * ephemeral text deltas) and turns them into ACP `session/update` notifications, in
 * log order; tells prompts when their turn ended; holds the open permission questions.
 */
import type * as acp from '@agentclientprotocol/sdk';
import { weakerIsolation, type AgentdClient } from '../lib/index.js';
import { SessionAttach, type ContentBlock, type Event, type PermissionDecision, type UserContentBlock } from '../../protocol/index.js';
import { contentToAcp, decisionOf, PERMISSION_OPTIONS, toolCallOf, toolResultUpdate } from './translate.js';

export type TurnEnd = { kind: 'completed'; stopReason: string | null } | { kind: 'interrupted' } | { kind: 'failed'; error: string };

/** How the view reaches the editor. */
export interface EditorPort {
  /** The editor shows notices (`session.notices`); otherwise warnings go in an agent message. */
  readonly notices: boolean;
  update(sessionId: string, update: acp.SessionUpdate): Promise<void>;
  requestPermission(params: acp.RequestPermissionRequest, signal: AbortSignal): Promise<acp.RequestPermissionResponse>;
}

interface Waiter {
  resolve(end: TurnEnd): void;
  reject(error: Error): void;
}

/** Ended turns remembered for prompts whose answer raced the turn's end; older ones are forgotten. */
const ENDED_KEPT = 64;

export class SessionView {
  workspace: string | undefined;
  /** The next seq this view wants: it has handled [0, next). */
  next = 0;
  /** Events below this seq are history being replayed (session/load), not live. */
  private replayUntil = 0;
  /** Text streamed so far by the current model call, per content-block index. */
  private streamed = new Map<number, string>();
  private readonly announced = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly ended = new Map<string, TurnEnd>();
  /** Prompts this view sent: their user messages are already on the editor's screen. */
  private readonly ownTurns = new Set<string>();
  private readonly ownPending: string[] = [];
  private readonly seenUserTurns = new Set<string>();
  private readonly permissions = new Map<string, { abort: AbortController }>();
  private readonly seqWaiters: Array<{ seq: number; resolve: () => void }> = [];
  /** Updates go out one after another so the editor sees them in log order. */
  private chain: Promise<void> = Promise.resolve();
  private subscription: { client: AgentdClient; unsubscribe(): Promise<void> } | undefined;
  private disposed = false;

  constructor(
    readonly sessionId: string,
    private readonly editor: EditorPort,
    private readonly diag: (message: string) => void,
  ) {}

  /**
   * Follows the session from `next` on this client. Resolves once every event that
   * existed at subscription time has been handled and its updates sent (the replay).
   */
  async attach(client: AgentdClient, options: { replay: boolean }): Promise<void> {
    const sub = await client.subscribe(this.sessionId, this.next, {
      onEvents: (events) => this.onEvents(events),
      onDropped: (next) => {
        // Too slow for the daemon's buffer: pick up again from where the log says.
        this.subscription = undefined;
        if (!this.disposed) void this.attach(client, { replay: false }).catch((e: Error) => this.fail(e));
        this.diag(`subscription to ${this.sessionId} dropped at ${next}; resubscribed`);
      },
    });
    this.subscription = { client, unsubscribe: sub.unsubscribe };
    if (options.replay) this.replayUntil = Math.max(this.replayUntil, sub.headSeq);
    await this.reached(sub.headSeq);
    await this.chain;
    // As a controller the daemon asks us the questions still open on this session (one
    // asked before the editor opened it, or while the connection was down).
    await client.request(SessionAttach, { sessionId: this.sessionId, role: 'controller' }).catch((error: Error) => {
      this.diag(`cannot attach to ${this.sessionId} as controller: ${error.message}`);
    });
  }

  /** Whether a prompt of this view waits for its turn to end. */
  get waiting(): boolean {
    return this.waiters.size > 0;
  }

  /** The connection this view follows on, if it still follows. */
  get client(): AgentdClient | undefined {
    return this.subscription?.client;
  }

  /** The connection to the daemon was lost: forget the subscription (a new one resumes from `next`). */
  detach(): void {
    this.subscription = undefined;
  }

  /** Gives up on every waiting prompt (the daemon cannot be reached again). */
  fail(error: Error): void {
    for (const [turnId, list] of this.waiters) {
      this.waiters.delete(turnId);
      for (const w of list) w.reject(error);
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const p of this.permissions.values()) p.abort.abort();
    this.fail(new Error('session closed'));
    await this.subscription?.unsubscribe().catch(() => undefined);
    this.subscription = undefined;
  }

  /** Before sending a prompt: its user message will come back through the log. */
  expectOwn(content: UserContentBlock[]): void {
    this.ownPending.push(JSON.stringify(content));
  }

  /** The prompt was accepted as `turnId`. */
  ownTurn(turnId: string, content: UserContentBlock[]): void {
    if (this.seenUserTurns.has(turnId)) return; // its user message came first and was matched by content
    this.ownTurns.add(turnId);
    const i = this.ownPending.indexOf(JSON.stringify(content));
    if (i >= 0) this.ownPending.splice(i, 1);
  }

  /** The prompt failed before reaching the log. */
  forgetOwn(content: UserContentBlock[]): void {
    const i = this.ownPending.indexOf(JSON.stringify(content));
    if (i >= 0) this.ownPending.splice(i, 1);
  }

  /** Resolves with how the turn ended, after every update of the turn went out. */
  waitTurn(turnId: string): Promise<TurnEnd> {
    const end = this.ended.get(turnId);
    if (end) return this.chain.then(() => end);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(turnId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(turnId, list);
    });
  }

  /** Counts the editor's cancels: a prompt that saw it move while it ran was cancelled. */
  cancels = 0;

  /** Withdraws the editor's open permission questions (after an interrupt); they count as denied. */
  withdrawPermissions(): void {
    for (const p of this.permissions.values()) p.abort.abort();
  }

  /** Asks the editor about one tool call; a withdrawn or cancelled question is a denial. */
  async askPermission(q: { toolUseId: string; tool: string; input: Record<string, unknown> }): Promise<PermissionDecision> {
    const abort = new AbortController();
    this.permissions.set(q.toolUseId, { abort });
    const toolCall = toolCallOf(q.toolUseId, q.tool, q.input, this.workspace);
    // The editor shows the call before it is asked about it.
    this.announce(toolCall);
    await this.chain;
    try {
      const response = await this.editor.requestPermission({ sessionId: this.sessionId, toolCall, options: PERMISSION_OPTIONS }, abort.signal);
      return decisionOf(response);
    } catch (error) {
      if (abort.signal.aborted) return 'deny';
      throw error;
    } finally {
      this.permissions.delete(q.toolUseId);
    }
  }

  /** A streaming fragment of the running model call. */
  onDelta(kind: 'text' | 'tool_input', index: number, text: string): void {
    if (kind !== 'text' || !text) return;
    this.streamed.set(index, (this.streamed.get(index) ?? '') + text);
    this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text } });
  }

  private onEvents(events: Event[]): void {
    for (const event of events) {
      if (event.seq < this.next) continue; // already handled before a resubscribe
      try {
        this.handle(event);
      } catch (error) {
        this.diag(`cannot show event ${event.seq} (${event.type}) of ${this.sessionId}: ${(error as Error).message}`);
      }
      this.next = event.seq + 1;
    }
    for (let i = this.seqWaiters.length - 1; i >= 0; i--) {
      const w = this.seqWaiters[i]!;
      if (this.next >= w.seq) {
        this.seqWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  private reached(seq: number): Promise<void> {
    if (this.next >= seq) return Promise.resolve();
    return new Promise((resolve) => this.seqWaiters.push({ seq, resolve }));
  }

  private handle(event: Event): void {
    const d = event.data as Record<string, any>;
    switch (event.type) {
      case 'session.created':
        this.workspace = String(d.workspace);
        return;
      case 'user.message': {
        const turnId = String(d.turnId);
        this.seenUserTurns.add(turnId);
        if (event.seq >= this.replayUntil && this.isOwn(turnId, d.content)) return;
        for (const content of contentToAcp(d.content)) this.send({ sessionUpdate: 'user_message_chunk', content });
        return;
      }
      case 'model.requested':
        // A new model call (or a retry): what streams next belongs to it.
        this.streamed = new Map();
        return;
      case 'assistant.message':
        this.assistantMessage(d.content as ContentBlock[]);
        return;
      case 'tool.started':
        this.announce(toolCallOf(d.toolUseId, d.name, d.input ?? {}, this.workspace));
        this.send({ sessionUpdate: 'tool_call_update', toolCallId: d.toolUseId, status: 'in_progress' });
        return;
      case 'permission.resolved':
        // Answered (here or by another client): the editor's question, if still open, is moot.
        this.permissions.get(String(d.toolUseId))?.abort.abort();
        return;
      case 'tool.result':
        this.send({ sessionUpdate: 'tool_call_update', ...toolResultUpdate(d as Parameters<typeof toolResultUpdate>[0]) });
        return;
      case 'sandbox.provisioned':
        this.warnWeakerIsolation(weakerIsolation(d));
        return;
      case 'turn.completed':
        return this.endTurn(String(d.turnId), { kind: 'completed', stopReason: d.stopReason ?? null });
      case 'turn.interrupted':
        return this.endTurn(String(d.turnId), { kind: 'interrupted' });
      case 'turn.failed':
        return this.endTurn(String(d.turnId), { kind: 'failed', error: String(d.error) });
      default:
        return; // other events carry nothing an ACP editor displays
    }
  }

  private isOwn(turnId: string, content: unknown): boolean {
    if (this.ownTurns.delete(turnId)) return true;
    const i = this.ownPending.indexOf(JSON.stringify(content));
    if (i < 0) return false;
    this.ownPending.splice(i, 1);
    return true;
  }

  /**
   * The durable reply: text already streamed as deltas is not sent again, only what
   * the deltas missed (all of it during a replay, or when the stream was not seen).
   */
  private assistantMessage(content: ContentBlock[]): void {
    content.forEach((block, index) => {
      if (block.type === 'text') {
        const seen = this.streamed.get(index) ?? '';
        const rest = block.text.startsWith(seen) ? block.text.slice(seen.length) : '';
        if (rest) this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: rest } });
      } else if (block.type === 'image') {
        this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'image', mimeType: block.source.media_type, data: block.source.data } });
      } else if (block.type === 'tool_use') {
        this.announce(toolCallOf(block.id, block.name, block.input, this.workspace));
      }
    });
    this.streamed = new Map();
  }

  /** Never silently weaker: the editor shows the sandbox's isolation warnings. */
  private warnWeakerIsolation(warnings: string[]): void {
    if (warnings.length === 0) return;
    if (this.editor.notices) {
      this.send({ sessionUpdate: 'notice', severity: 'warning', title: 'agentd: weaker sandbox isolation', description: warnings.join('\n') });
    } else {
      this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: warnings.map((w) => `\n⚠ agentd: ${w}\n`).join('') } });
    }
  }

  private announce(call: acp.ToolCall): void {
    if (this.announced.has(call.toolCallId)) return;
    this.announced.add(call.toolCallId);
    this.send({ sessionUpdate: 'tool_call', ...call });
  }

  private endTurn(turnId: string, end: TurnEnd): void {
    for (const p of this.permissions.values()) p.abort.abort();
    this.ended.set(turnId, end);
    if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.keys().next().value!);
    const list = this.waiters.get(turnId);
    this.waiters.delete(turnId);
    if (list) void this.chain.then(() => list.forEach((w) => w.resolve(end)));
  }

  private send(update: acp.SessionUpdate): void {
    this.chain = this.chain
      .then(() => this.editor.update(this.sessionId, update))
      .catch((error: Error) => this.diag(`session/update for ${this.sessionId} failed: ${error.message}`));
  }
}
