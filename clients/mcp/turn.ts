import type { KnownEvent } from '../../protocol/index.js';
import { TranscriptFold, weakerIsolation, type DaemonLink, type FoldStep, type TranscriptTurn, type TurnEnd } from '../lib/index.js';

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

/** What a model is told of an ended turn, from its transcript. */
export function turnSummary(sessionId: string, turn: TranscriptTurn, end: TurnEnd): TurnSummary {
  const lastStop = turn.reply?.stopReason ?? null;
  return {
    sessionId,
    turnId: turn.turnId,
    outcome: end.kind,
    stopReason: end.kind === 'completed' ? (end.stopReason ?? lastStop) : lastStop,
    ...(end.kind === 'failed' ? { error: end.error } : {}),
    answer: turn.reply?.text ?? '',
    // The calls as the model made them: a denied call never gets a tool.started.
    toolCalls: turn.items.flatMap((item) =>
      item.kind !== 'tool'
        ? []
        : [{ name: item.call.name, toolUseId: item.call.toolUseId, ok: item.call.status === 'done', ...(item.call.status === 'done' ? {} : { errorKind: item.call.result?.errorKind ?? 'no_result' }) }],
    ),
    firstSeq: turn.firstSeq,
    lastSeq: turn.lastSeq,
    warnings: turn.items.flatMap((item) => (item.kind === 'notice' && item.notice.type === 'sandbox.provisioned' ? weakerIsolation(item.notice.data) : [])),
  };
}

/** A one-line description of an event, for progress messages. */
export function describeEvent(event: KnownEvent): string {
  switch (event.type) {
    case 'tool.started':
      return `tool.started: ${event.data.name}`;
    case 'tool.result':
      return `tool.result: ${event.data.isError ? `error (${event.data.errorKind ?? 'tool_error'})` : 'ok'}`;
    case 'permission.requested':
      return `permission.requested: ${event.data.tool} waits for an answer from a controller of the session (e.g. \`agentd attach\`)`;
    case 'permission.resolved':
      return `permission.resolved: ${event.data.decision} by ${event.data.by}`;
    case 'assistant.message':
      return `assistant.message (stop: ${event.data.stopReason ?? 'none'})`;
    case 'model.retry':
      return `model.retry: attempt ${event.data.attempt} (${event.data.reason})`;
    case 'turn.failed':
      return `turn.failed: ${event.data.error}`;
    case 'sandbox.provisioned': {
      const warnings = weakerIsolation(event.data);
      return `sandbox.provisioned: ${event.data.isolation}${warnings.length ? `; WARNING: ${warnings.join('; ')}` : ''}`;
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
  /** Each event of the turn as it is folded (with the changes it made). */
  onStep?: (step: FoldStep) => void;
  /** The follower has the log up to its head as it was when following began. */
  onCaughtUp?: () => void;
  signal?: AbortSignal;
}

/** How many times in a row the daemon may vanish while one turn is followed. */
const MAX_RECONNECTS = 3;

/**
 * Follows the session until the turn ends. The daemon keeps the turn in its log, so
 * when the connection drops (daemon restart) the link reconnects at once (starting a
 * daemon that crashed, never one stopped on purpose) and following resumes from the
 * next seq; the turn itself is resumed by the new daemon's harness.
 */
export function followTurn(link: DaemonLink, options: FollowTurnOptions): Promise<TurnSummary> {
  const fold = new TranscriptFold();
  const lost = (why: string) =>
    new Error(`lost the agentd daemon while turn ${options.turnId} ran and could not reconnect (${why}); the turn is in the session log from seq ${options.from}`);
  return new Promise<TurnSummary>((resolve, reject) => {
    let reconnects = 0;
    let connected = link.state.kind === 'connected';
    const finish = (settle: () => void) => {
      follower.dispose();
      state.dispose();
      options.signal?.removeEventListener('abort', cancelled);
      settle();
    };
    const follower = link.follow(options.sessionId, options.from, {
      onEvents: (events) => {
        for (const event of events) {
          const step = fold.event(event);
          const turn = step.turn;
          if (turn?.turnId !== options.turnId) continue;
          options.onStep?.(step);
          const end = turn.end;
          if (end) return finish(() => resolve(turnSummary(options.sessionId, turn, end)));
        }
      },
      onCaughtUp: () => options.onCaughtUp?.(),
      onEnded: (error) => finish(() => reject(error)),
    });
    const state = link.onState((s) => {
      if (s.kind === 'daemonStopped') return finish(() => reject(lost(s.message)));
      if (s.kind === 'connected') connected = true;
      if (s.kind !== 'connecting' || !connected) return;
      connected = false;
      if (++reconnects > MAX_RECONNECTS) {
        return finish(() => reject(new Error(`the agentd daemon kept going away while turn ${options.turnId} ran; its events are in the log from seq ${options.from}`)));
      }
      link.client().catch((error: Error) => finish(() => reject(lost(error.message))));
    });
    const cancelled = () => finish(() => reject(new Error('cancelled; the turn runs on in the daemon')));
    if (options.signal?.aborted) return cancelled();
    options.signal?.addEventListener('abort', cancelled, { once: true });
  });
}
