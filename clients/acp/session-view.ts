/**
 * One agentd session as the editor sees it: follows the session's log (and its
 * ephemeral text deltas) through the shared fold and turns what changed into ACP
 * `session/update` notifications, in log order; tells prompts when their turn ended;
 * holds the open permission questions.
 */
import type * as acp from '@agentclientprotocol/sdk';
import { TranscriptFold, weakerIsolation, type DaemonLink, type Notice, type SessionFollower, type TranscriptChange, type TurnEnd } from '../lib/index.js';
import type { Event, PermissionDecision, PromptContent, UserContentBlock } from '../../protocol/index.js';
import { contentToAcp, decisionOf, PERMISSION_OPTIONS, toolCallOf, toolResultUpdate } from './translate.js';

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

/** Said where a turn was interrupted while the model replied: the partial reply is not in the log. */
export const CUT_REPLY_NOTE = '\n\n[agentd: the turn was interrupted while the model was replying; the partial reply is not kept]\n';

export class SessionView {
  private readonly fold = new TranscriptFold();
  private follower: SessionFollower | undefined;
  private readonly announced = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly ended = new Map<string, TurnEnd>();
  /** Prompts this view sent: their user messages are already on the editor's screen. */
  private readonly ownTurns = new Set<string>();
  private readonly ownPending: string[] = [];
  private readonly seenUserTurns = new Set<string>();
  private readonly permissions = new Map<string, { abort: AbortController }>();
  /** Updates go out one after another so the editor sees them in log order. */
  private chain: Promise<void> = Promise.resolve();
  /** Turns with a model call in flight (model.requested, no reply yet): their reply streams. */
  private readonly replying = new Set<string>();
  /**
   * The turn whose reply was streaming when this view caught up: its fragments began
   * before the editor was there, so they are not shown and the reply is sent whole once
   * it is in the log.
   */
  private joinedMidReply: string | undefined;
  /** Turns past their prompt (an event beyond user.message came): they run, not merely queue. */
  private readonly startedTurns = new Set<string>();
  /** Interrupts waiting for a queued turn of this editor to start (it was cancelled while queued). */
  private readonly interruptOnStart = new Map<string, () => Promise<void>>();
  /** Closed by the editor (`session/close`): nothing more is shown. */
  private closed = false;
  private markDisposed!: () => void;
  /** Settles once the view stops following (after a close, when its queued turns were stopped). */
  readonly disposed = new Promise<void>((resolve) => (this.markDisposed = resolve));

  constructor(
    readonly sessionId: string,
    private readonly editor: EditorPort,
    private readonly diag: (message: string) => void,
  ) {}

  /**
   * Follows the session from `from` (0: its first event, replayed: `session/load`; its
   * head: `session/resume`) on the link (and on its later connections). Resolves once
   * the log as it was has been replayed to the editor; then, as a controller, this view
   * is asked the questions still open on the session (one asked before the editor opened it).
   */
  async open(link: DaemonLink, from = 0): Promise<void> {
    let replayed!: () => void;
    let refused!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => ((replayed = resolve), (refused = reject)));
    this.follower = link.follow(this.sessionId, from, {
      onEvents: (events) => this.onEvents(events),
      onDelta: (delta) => this.show(this.fold.delta(delta)),
      onCaughtUp: () => {
        if (this.joinedMidReply === undefined) this.joinedMidReply = [...this.replying].at(-1) ?? '';
        replayed();
      },
      onEnded: (error) => {
        refused(error);
        this.fail(error);
      },
    });
    await ready;
    await this.chain;
    await link.attach(this.sessionId, 'controller').catch((error: Error) => {
      this.diag(`cannot attach to ${this.sessionId} as controller: ${error.message}`);
    });
  }

  /** Whether a prompt of this view waits for its turn to end. */
  get waiting(): boolean {
    return this.waiters.size > 0;
  }

  /** Prompts sent to the daemon and not yet answered: their turns may be running already. */
  private readonly sending = new Set<Promise<unknown>>();

  /** Notes a prompt on its way (see promptsAnswered); returns it. */
  sent<T>(prompt: Promise<T>): Promise<T> {
    this.sending.add(prompt);
    prompt.then(
      () => this.sending.delete(prompt),
      () => this.sending.delete(prompt),
    );
    return prompt;
  }

  /** Once every prompt on its way was answered, and each that was accepted waits for its turn. */
  async promptsAnswered(): Promise<void> {
    await Promise.allSettled([...this.sending]);
  }

  /** Gives up on every waiting prompt (the daemon cannot be reached again). */
  fail(error: Error): void {
    for (const [turnId, list] of this.waiters) {
      this.waiters.delete(turnId);
      for (const w of list) w.reject(error);
    }
  }

  /** `session/close`, after the turn was interrupted: waiting prompts answer `cancelled`, then the view stops. */
  close(): void {
    this.closed = true;
    for (const [turnId, list] of this.waiters) {
      this.waiters.delete(turnId);
      for (const w of list) w.resolve({ kind: 'interrupted' });
    }
    // A queued turn of this editor still to be stopped when it starts: follow until then, silently.
    if (this.interruptOnStart.size === 0) this.dispose();
  }

  dispose(): void {
    this.markDisposed();
    this.follower?.dispose();
    for (const p of this.permissions.values()) p.abort.abort();
    this.fail(new Error('session closed'));
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

  /** This editor's turns that wait for their turn in the session's queue. */
  get queuedOwnTurns(): string[] {
    return [...this.waiters.keys()].filter((turnId) => !this.startedTurns.has(turnId));
  }

  /**
   * A queued turn of this editor was cancelled: its prompt answers `cancelled` now, and
   * `interrupt` stops the turn when it starts (interrupting now would stop the turn ahead of it).
   */
  cancelQueued(turnId: string, interrupt: () => Promise<void>): void {
    this.interruptOnStart.set(turnId, interrupt);
    const list = this.waiters.get(turnId) ?? [];
    this.waiters.delete(turnId);
    for (const w of list) w.resolve({ kind: 'interrupted' });
  }

  /** Counts the editor's cancels: a prompt that saw it move while it ran was cancelled. */
  cancels = 0;

  /** Withdraws the editor's open permission questions (after an interrupt); they count as denied. */
  withdrawPermissions(): void {
    for (const p of this.permissions.values()) p.abort.abort();
  }

  /** Asks the editor about one tool call; a question withdrawn (by the daemon, or here) or cancelled is a denial. */
  async askPermission(q: { toolUseId: string; tool: string; input: Record<string, unknown> }, withdrawn: AbortSignal): Promise<PermissionDecision> {
    const abort = new AbortController();
    withdrawn.addEventListener('abort', () => abort.abort(), { once: true });
    this.permissions.set(q.toolUseId, { abort });
    const toolCall = toolCallOf(q.toolUseId, q.tool, q.input, this.fold.transcript.workspace);
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

  private onEvents(events: Event[]): void {
    for (const event of events) {
      try {
        this.showEvent(event, this.fold.event(event).changes);
      } catch (error) {
        this.diag(`cannot show event ${event.seq} (${event.type}) of ${this.sessionId}: ${(error as Error).message}`);
      }
    }
  }

  private show(changes: TranscriptChange[]): void {
    for (const change of changes) this.update(change);
  }

  /** An event's changes, with what the log alone cannot say: a reply joined mid-stream, a reply cut off. */
  private showEvent(event: Event, changes: TranscriptChange[]): void {
    const turnId = typeof event.data.turnId === 'string' ? event.data.turnId : undefined;
    if (turnId === undefined) return this.show(changes);
    if (event.type !== 'user.message' && !this.startedTurns.has(turnId)) {
      this.startedTurns.add(turnId);
      const interrupt = this.interruptOnStart.get(turnId);
      this.interruptOnStart.delete(turnId);
      if (interrupt) void interrupt();
      if (this.closed && this.interruptOnStart.size === 0) return this.dispose();
    }
    if (event.type === 'model.requested') this.replying.add(turnId);
    if (event.type === 'assistant.message') {
      this.replying.delete(turnId);
      if (this.joinedMidReply === turnId) {
        this.joinedMidReply = '';
        // The reply whole, as the fold keeps it, in place of what streamed of it.
        const text = changes.find((c) => c.kind === 'text')?.turn?.reply?.text ?? '';
        if (text !== '') this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text } });
        return this.show(changes.filter((c) => c.kind !== 'text'));
      }
    }
    if (event.type === 'turn.interrupted' && this.replying.has(turnId)) {
      this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: CUT_REPLY_NOTE } });
    }
    if (event.type === 'turn.interrupted' || event.type === 'turn.completed' || event.type === 'turn.failed') this.replying.delete(turnId);
    this.show(changes);
  }

  /** One change as the editor shows it (nothing, for what an ACP editor has no place for). */
  private update(change: TranscriptChange): void {
    switch (change.kind) {
      case 'user':
        this.seenUserTurns.add(change.turn.turnId);
        if (this.isOwn(change.turn.turnId, change.content)) return;
        for (const content of contentToAcp(change.content)) this.send({ sessionUpdate: 'user_message_chunk', content });
        return;
      case 'text':
        // Fragments of a reply that began before the editor was there: the whole reply follows.
        if (change.streamed && change.turn.turnId === this.joinedMidReply) return;
        this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: change.text } });
        return;
      case 'image':
        this.send({ sessionUpdate: 'agent_message_chunk', content: { type: 'image', mimeType: change.image.source.media_type, data: change.image.source.data } });
        return;
      case 'tool': {
        const { call } = change;
        if (change.what === 'announced' || change.what === 'running') this.announce(toolCallOf(call.toolUseId, call.name, call.input, this.fold.transcript.workspace));
        if (change.what === 'running') this.send({ sessionUpdate: 'tool_call_update', toolCallId: call.toolUseId, status: 'in_progress' });
        // Answered (here or by another client): the editor's question, if still open, is moot.
        if (change.what === 'answered') this.permissions.get(call.toolUseId)?.abort.abort();
        if (change.what === 'result') this.send({ sessionUpdate: 'tool_call_update', ...toolResultUpdate(call) });
        return;
      }
      case 'notice':
        this.notice(change.notice);
        return;
      case 'ended':
        this.endTurn(change.turn.turnId, change.end);
        return;
      case 'unknown':
        return; // a newer daemon's event: nothing an ACP editor displays
    }
  }

  private isOwn(turnId: string, content: PromptContent): boolean {
    if (this.ownTurns.delete(turnId)) return true;
    const i = this.ownPending.indexOf(JSON.stringify(content));
    if (i < 0) return false;
    this.ownPending.splice(i, 1);
    return true;
  }

  private notice(notice: Notice): void {
    if (notice.type === 'sandbox.provisioned') this.warnWeakerIsolation(weakerIsolation(notice.data));
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
    if (this.closed) return;
    this.chain = this.chain
      .then(() => this.editor.update(this.sessionId, update))
      .catch((error: Error) => this.diag(`session/update for ${this.sessionId} failed: ${error.message}`));
  }
}
