import type { ContentBlock, Event } from '../../protocol/index.js';
import { weakerIsolation, type AgentdClient } from '../lib/index.js';
import type { DaemonLink } from './link.js';

export interface ToolCallSummary {
  name: string;
  toolUseId: string;
  ok: boolean;
  /** Why it failed (`tool_error`, `denied`, `interrupted`, `timeout`, `sandbox_lost`), or `no_result`. */
  errorKind?: string;
}

export interface TurnSummary {
  sessionId: string;
  turnId: string;
  outcome: 'completed' | 'interrupted' | 'failed';
  stopReason: string | null;
  error?: string;
  /** Text of the turn's last assistant message: the answer. */
  answer: string;
  toolCalls: ToolCallSummary[];
  /** The turn's events lie in [firstSeq, lastSeq] of the session log. */
  firstSeq: number;
  lastSeq: number;
  /** The sandbox ran weaker than bubblewrap during the turn: the daemon's warnings. */
  warnings: string[];
}

const ENDS = new Set(['turn.completed', 'turn.interrupted', 'turn.failed']);

/** Folds one turn's events into its summary; events of other turns are ignored. */
export class TurnFold {
  private answer = '';
  private stopReason: string | null = null;
  private readonly calls = new Map<string, ToolCallSummary>();
  private readonly warnings: string[] = [];
  private lastSeq: number;
  result: TurnSummary | undefined;

  constructor(
    private readonly sessionId: string,
    private readonly turnId: string,
    private readonly firstSeq: number,
  ) {
    this.lastSeq = firstSeq;
  }

  /** Whether `event` belongs to this turn (permission.resolved carries only the tool use id). */
  owns(event: Event): boolean {
    if (event.data.turnId !== undefined) return event.data.turnId === this.turnId;
    return typeof event.data.toolUseId === 'string' && this.calls.has(event.data.toolUseId);
  }

  private noteCall(toolUseId: string, name: string): void {
    if (!this.calls.has(toolUseId)) this.calls.set(toolUseId, { name, toolUseId, ok: false, errorKind: 'no_result' });
  }

  add(event: Event): void {
    // Provisioned for this turn's tool calls (it carries no turn id): never silently weaker.
    if (event.type === 'sandbox.provisioned' && !this.result) this.warnings.push(...weakerIsolation(event.data));
    if (!this.owns(event)) return;
    this.lastSeq = event.seq;
    const d = event.data;
    switch (event.type) {
      case 'assistant.message': {
        const blocks = (d.content as ContentBlock[] | undefined) ?? [];
        this.answer = blocks.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n');
        this.stopReason = (d.stopReason as string | null | undefined) ?? null;
        // The calls as the model made them: a denied call never gets a tool.started.
        for (const b of blocks) if (b.type === 'tool_use') this.noteCall(b.id, b.name);
        return;
      }
      case 'tool.started':
        this.noteCall(String(d.toolUseId), String(d.name));
        return;
      case 'tool.result': {
        const call = this.calls.get(String(d.toolUseId));
        if (!call) return;
        call.ok = d.isError !== true;
        if (call.ok) delete call.errorKind;
        else call.errorKind = String(d.errorKind ?? 'tool_error');
        return;
      }
    }
    if (!ENDS.has(event.type)) return;
    const outcome = event.type.slice('turn.'.length) as TurnSummary['outcome'];
    this.result = {
      sessionId: this.sessionId,
      turnId: this.turnId,
      outcome,
      stopReason: outcome === 'completed' ? ((d.stopReason as string | null | undefined) ?? this.stopReason) : this.stopReason,
      ...(outcome === 'failed' ? { error: String(d.error ?? 'unknown error') } : {}),
      answer: this.answer,
      toolCalls: [...this.calls.values()],
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      warnings: [...this.warnings],
    };
  }
}

/** A one-line description of an event, for progress messages. */
export function describeEvent(event: Event): string {
  const d = event.data;
  switch (event.type) {
    case 'tool.started':
      return `tool.started: ${String(d.name)}`;
    case 'tool.result':
      return `tool.result: ${d.isError ? `error (${String(d.errorKind ?? 'tool_error')})` : 'ok'}`;
    case 'permission.requested':
      return `permission.requested: ${String(d.tool)} waits for an answer from a controller of the session (e.g. \`agentd attach\`)`;
    case 'permission.resolved':
      return `permission.resolved: ${String(d.decision)} by ${String(d.by)}`;
    case 'assistant.message':
      return `assistant.message (stop: ${String(d.stopReason)})`;
    case 'model.retry':
      return `model.retry: attempt ${String(d.attempt)} (${String(d.reason)})`;
    case 'turn.failed':
      return `turn.failed: ${String(d.error)}`;
    case 'sandbox.provisioned': {
      const warnings = weakerIsolation(d);
      return `sandbox.provisioned: ${String(d.isolation)}${warnings.length ? `; WARNING: ${warnings.join('; ')}` : ''}`;
    }
    default:
      return event.type;
  }
}

/** The summary as text a model reads: the answer, then what was done and how it ended. */
export function renderSummary(s: TurnSummary): string {
  const lines: string[] = [];
  lines.push(s.answer === '' ? '(no answer text)' : s.answer, '', '---');
  if (s.toolCalls.length === 0) lines.push('Tool calls: none');
  else lines.push(`Tool calls: ${s.toolCalls.map((c) => `${c.name} (${c.ok ? 'ok' : `error: ${c.errorKind}`})`).join(', ')}`);
  if (s.outcome === 'completed') lines.push(`Turn completed (stop reason: ${s.stopReason ?? 'none'}).`);
  else if (s.outcome === 'interrupted') lines.push('Turn interrupted.');
  else lines.push(`Turn failed: ${s.error}`);
  lines.push(`Session ${s.sessionId}, events ${s.firstSeq}..${s.lastSeq}.`);
  for (const warning of s.warnings) lines.push(`WARNING (weaker sandbox isolation): ${warning}`);
  return lines.join('\n');
}

export interface FollowTurnOptions {
  sessionId: string;
  turnId: string;
  /** Seq of the turn's user message: following starts there. */
  from: number;
  onEvent?: (event: Event) => void;
  signal?: AbortSignal;
}

/** How many times in a row the daemon may vanish while one turn is followed. */
const MAX_RECONNECTS = 3;

/**
 * Follows the session until the turn ends. The daemon keeps the turn in its log, so
 * when the connection drops (daemon restart) following resumes from the next seq on
 * a new connection; the turn itself is resumed by the new daemon's harness.
 */
export async function followTurn(link: DaemonLink, options: FollowTurnOptions): Promise<TurnSummary> {
  const fold = new TurnFold(options.sessionId, options.turnId, options.from);
  let next = options.from;
  let reconnects = 0;
  const aborted = new Promise<'aborted'>((resolve) => {
    if (options.signal?.aborted) resolve('aborted');
    options.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
  for (;;) {
    let client: AgentdClient;
    try {
      client = await link.client();
    } catch (error) {
      throw new Error(
        `lost the agentd daemon while turn ${options.turnId} ran and could not reconnect (${(error as Error).message}); ` +
          `the turn is in the session log from seq ${options.from}`,
      );
    }
    let finished!: () => void;
    const done = new Promise<'done'>((resolve) => (finished = () => resolve('done')));
    let dropped!: () => void;
    const wasDropped = new Promise<'dropped'>((resolve) => (dropped = () => resolve('dropped')));
    const sub = await client.subscribe(options.sessionId, next, {
      onEvents: (events) => {
        for (const event of events) {
          if (event.seq < next || fold.result) continue;
          next = event.seq + 1;
          fold.add(event);
          if (fold.owns(event) || event.type === 'sandbox.provisioned') options.onEvent?.(event);
          if (fold.result) finished();
        }
      },
      onDropped: () => dropped(),
    });
    const outcome = await Promise.race([done, wasDropped, aborted, client.closed.then(() => 'closed' as const)]);
    if (outcome !== 'closed' && outcome !== 'dropped') await sub.unsubscribe().catch(() => undefined);
    if (outcome === 'done') return fold.result!;
    if (outcome === 'aborted') throw new Error('cancelled; the turn runs on in the daemon');
    if (outcome === 'closed' && ++reconnects > MAX_RECONNECTS) {
      throw new Error(`the agentd daemon kept going away while turn ${options.turnId} ran; its events are in the log from seq ${options.from}`);
    }
  }
}
