import { resolve } from 'node:path';
import type { z } from 'zod';
import {
  type ContentBlock,
  type Event,
  DaemonStatus,
  SessionCreate,
  SessionDeltaNotification,
  SessionGet,
  SessionId,
  SessionInterrupt,
  SessionPrompt,
} from '../../../protocol/index.js';
import { connect, type AgentdClient } from '../../lib/client.js';
import { weakerIsolation } from '../../lib/isolation.js';
import { checked, type Command, UsageError } from '../context.js';
import { terminalPermissions } from '../questions.js';
import { oneLine, shortInput } from '../render.js';

type Delta = z.output<typeof SessionDeltaNotification.params>;

export type TurnOutcome =
  | { kind: 'completed' }
  | { kind: 'failed'; error: string }
  | { kind: 'interrupted'; note?: string }
  | { kind: 'lost'; error: string };

interface Sink {
  write(text: string): unknown;
}



function resultText(content: ContentBlock[]): string {
  return content.map((b) => (b.type === 'text' ? b.text : `[${b.type}]`)).join('\n');
}

/** One line for a tool result: errors with their kind, else the first line and the size. */
export function shortResult(tool: string | undefined, data: Record<string, unknown>): string {
  const text = resultText((data.content as ContentBlock[] | undefined) ?? []).replace(/\r/g, '').trimEnd();
  const lines = text === '' ? [] : text.split('\n');
  if (data.isError) return `error [${String(data.errorKind ?? 'tool_error')}]: ${oneLine(lines[0] ?? '', 100)}`;
  if (tool === 'read_file' && lines.length > 0) return `read ${lines.length} line${lines.length === 1 ? '' : 's'}`;
  const exit = /^\[exit code: (-?\d+)\]$/m.exec(text)?.[1];
  if (tool === 'bash' && exit !== undefined) {
    // A command's verdict is usually its last line of output.
    const output = lines.filter((l) => !/^\[.*\]$/.test(l));
    const last = output.findLast((l) => l.trim() !== '');
    return `exit ${exit}${last ? `: ${oneLine(last, 80)}` : ''}${output.length > 1 ? `  (${output.length} lines)` : ''}`;
  }
  const first = oneLine(lines.find((l) => l.trim() !== '') ?? '(no output)', 80);
  return lines.length > 1 ? `${first}  (+${lines.length - 1} lines, ${text.length} chars)` : first;
}

/**
 * Renders one turn for a terminal: the answer's text streams on `text` as its deltas
 * arrive, and the durable assistant.message only adds what the stream missed; tool
 * calls, results and notes go to `info`, one compact line each.
 */
export class TurnView {
  private midLine = false;
  /** Text streamed so far per content-block index of the reply being streamed. */
  private readonly streamed = new Map<number, string>();
  private readonly tools = new Map<string, string>();
  /** Results name their tool when the reply made several calls at once. */
  private parallel = false;
  private ours = false;
  /** Called when a permission question was answered (by anyone); lets an open prompt close. */
  onPermissionResolved: ((toolUseId: string, decision: string, by: string) => void) | undefined;

  constructor(private readonly out: { text: Sink; info: Sink; textPrefix?: string }) {}

  private writeText(text: string): void {
    if (text === '') return;
    this.out.text.write(text);
    this.midLine = !text.endsWith('\n');
  }

  /** Ends a half-written answer line so that what follows starts on its own line. */
  lineBreak(): void {
    if (this.midLine) this.writeText('\n');
  }

  private startBlock(): void {
    this.lineBreak();
    this.writeText(this.out.textPrefix ?? '');
  }

  note(text: string): void {
    this.lineBreak();
    this.out.info.write(`${text}\n`);
  }

  delta(d: Delta): void {
    if (d.kind !== 'text' || d.text === '') return;
    const before = this.streamed.get(d.index);
    if (before === undefined) this.startBlock();
    this.streamed.set(d.index, (before ?? '') + d.text);
    this.writeText(d.text);
  }

  /** Shows an event of turn `turnId`; returns the outcome when the turn ended. */
  event(event: Event, turnId: string): TurnOutcome | undefined {
    const d = event.data;
    if (d.turnId !== undefined && d.turnId !== turnId) {
      this.ours = false;
      return undefined;
    }
    if (d.turnId === turnId) this.ours = true;
    if (!this.ours) return undefined;
    switch (event.type) {
      case 'assistant.message':
        this.message(d.content as ContentBlock[]);
        return undefined;
      case 'tool.result': {
        const tool = this.tools.get(String(d.toolUseId));
        this.note(`  ⎿  ${this.parallel && tool ? `${tool}: ` : ''}${shortResult(tool, d)}`);
        return undefined;
      }
      case 'permission.resolved':
        this.onPermissionResolved?.(String(d.toolUseId), String(d.decision), String(d.by));
        return undefined;
      case 'model.retry':
        this.lineBreak();
        this.note(`· model call failed (${oneLine(String(d.reason), 100)}); retry ${String(d.attempt)} in ${String(d.delayMs)} ms`);
        this.streamed.clear();
        return undefined;
      case 'sandbox.provisioned':
        this.note(`· sandbox ready (${String(d.isolation)}, ${String(d.durationMs)} ms)`);
        for (const warning of weakerIsolation(d)) this.note(`! WARNING: weaker isolation: ${warning}`);
        return undefined;
      case 'sandbox.lost':
        this.note(`· sandbox lost: ${oneLine(String(d.reason), 100)}`);
        return undefined;
      case 'context.compacted':
        this.note(`· older context compacted (up to seq ${String(d.upToSeq)})`);
        return undefined;
      case 'turn.completed':
        this.lineBreak();
        return { kind: 'completed' };
      case 'turn.interrupted':
        this.lineBreak();
        return { kind: 'interrupted' };
      case 'turn.failed':
        this.lineBreak();
        return { kind: 'failed', error: String(d.error) };
      default:
        return undefined;
    }
  }

  private message(content: ContentBlock[]): void {
    // Matched in order, not by index: the stream may carry blocks the log does not keep.
    const streamed = [...this.streamed.entries()].sort((a, b) => a[0] - b[0]).map(([, text]) => text);
    this.streamed.clear();
    this.parallel = content.filter((b) => b.type === 'tool_use').length > 1;
    let k = 0;
    for (const block of content) {
      if (block.type === 'text') {
        const shown = streamed[k++];
        if (shown !== undefined && block.text.startsWith(shown)) this.writeText(block.text.slice(shown.length));
        else if (block.text !== '') {
          // Nothing streamed for it, or what streamed was another attempt: show it whole.
          this.startBlock();
          this.writeText(block.text);
        }
      } else if (block.type === 'tool_use') {
        this.tools.set(block.id, block.name);
        this.note(`⏺ ${block.name} ${shortInput(block.name, block.input)}`);
      }
    }
    this.lineBreak();
  }
}

/**
 * Prompts `sessionId` and follows the turn to its end: subscribed before prompting so
 * nothing is missed, deltas and events of this turn only. Ctrl-C asks the daemon to
 * interrupt the turn; a second Ctrl-C gives up waiting at once.
 */
export async function promptAndFollow(client: AgentdClient, sessionId: string, content: string, view: TurnView): Promise<TurnOutcome> {
  let turnId: string | undefined;
  const early: Array<() => void> = [];
  let settle!: (outcome: TurnOutcome) => void;
  const outcome = new Promise<TurnOutcome>((r) => (settle = r));
  let next: number | undefined;
  let unsubscribe: (() => Promise<void>) | undefined;

  const onEvent = (event: Event) => {
    if (turnId === undefined) return void early.push(() => onEvent(event));
    const end = view.event(event, turnId);
    if (end) settle(end);
  };
  const deltas = client.onNotification(SessionDeltaNotification, (d) => {
    if (d.sessionId !== sessionId) return;
    if (turnId === undefined) return void early.push(() => d.turnId === turnId && view.delta(d));
    if (d.turnId === turnId) view.delta(d);
  });
  const follow = async (from: number | undefined): Promise<void> => {
    const sub = await client.subscribe(sessionId, from, {
      onEvents: (events) => {
        for (const event of events) {
          if (next !== undefined && event.seq < next) continue;
          next = event.seq + 1;
          onEvent(event);
        }
      },
      // Too slow for the daemon's buffer: pick up where we stopped.
      onDropped: (from) => void follow(from).catch((error: Error) => settle({ kind: 'lost', error: error.message })),
    });
    unsubscribe = sub.unsubscribe;
  };

  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts > 1) return settle({ kind: 'interrupted', note: 'stopped waiting; the daemon may still be ending the turn' });
    view.note('interrupting the turn… (Ctrl-C again to quit at once)');
    client.request(SessionInterrupt, { sessionId }).then(
      ({ interrupted }) => {
        if (!interrupted) settle({ kind: 'interrupted', note: 'no turn was running yet; a queued prompt may still run' });
      },
      (error: Error) => settle({ kind: 'lost', error: error.message }),
    );
  };
  process.on('SIGINT', onSigint);
  void client.closed.then(() => settle(lostConnection(client)));
  try {
    await follow(undefined);
    turnId = (await client.request(SessionPrompt, { sessionId, content })).turnId;
    for (const replay of early.splice(0)) replay();
    return await outcome;
  } finally {
    process.off('SIGINT', onSigint);
    deltas.dispose();
    await unsubscribe?.().catch(() => undefined);
  }
}

/** The outcome when the connection closed under a turn: the daemon may have been stopped on purpose. */
export function lostConnection(client: AgentdClient): TurnOutcome {
  const notice = client.stoppingNotice;
  return notice
    ? { kind: 'lost', error: `the daemon was stopped on purpose (${notice.reason}); the turn is paused and carries on when it starts again (\`agentd start\`)` }
    : { kind: 'lost', error: 'the connection to the daemon closed' };
}

/** Exit code for an outcome, with its diagnostics on stderr. */
export function exitCodeFor(outcome: TurnOutcome, who: string, sessionId: string): number {
  switch (outcome.kind) {
    case 'completed':
      return 0;
    case 'failed':
      process.stderr.write(`${who}: turn failed: ${outcome.error}\n`);
      return 1;
    case 'interrupted':
      process.stderr.write(`${who}: interrupted${outcome.note ? ` (${outcome.note})` : ''}\n`);
      return 130;
    case 'lost':
      process.stderr.write(`${who}: ${outcome.error}; the turn runs on in the daemon: agentd log ${sessionId} --follow\n`);
      return 1;
  }
}

const NO_KEY = [
  'agentd run: the daemon has no API key. Set one in either place the daemon looks:',
  '  export ANTHROPIC_API_KEY=sk-ant-...        (the daemon reads its environment when it starts:',
  '                                              `agentd stop` first if one is already running)',
  '  agentd vault set ANTHROPIC_API_KEY < key   (stored encrypted; no restart needed)',
  'To see agentd work without a key, run `agentd demo` (an offline scripted model).',
].join('\n');

/** Why a run cannot call the model, asked of the daemon (its environment and vault), not of this shell. */
async function missingApiKey(client: AgentdClient): Promise<string | undefined> {
  const { modelApiKey, pid } = await client.request(DaemonStatus, {});
  if (modelApiKey !== 'missing') return undefined;
  // The shell has a key the running daemon never saw: it started before the export.
  const shell = process.env.ANTHROPIC_API_KEY
    ? `\nThis shell has ANTHROPIC_API_KEY, but the running daemon (pid ${pid}) started without it: \`agentd stop\`, then run again.`
    : '';
  return `${NO_KEY}${shell}`;
}

export const run: Command = {
  usage: [
    'agentd run "<prompt>" [--workspace DIR] [--session ID] [--model M] [--yes]',
    '',
    'Prompts a new session (workspace DIR, default the current directory) or --session ID, and',
    'streams the turn: the answer on stdout; tool calls, results, questions and notes on stderr.',
    'Tool permissions of this session are asked here: y = allow, n = deny, a = always allow that tool.',
    'Without a terminal on stdin they are denied. --yes creates the session with every tool allowed',
    '(with --session, it allows that session\'s questions). Questions of other sessions never reach run:',
    'neither --yes nor a missing terminal decides anything for a session run does not drive.',
    'Ctrl-C interrupts the turn; a second Ctrl-C quits. Exit: 0 completed, 1 failed, 130 interrupted.',
    '',
    'The API key: the daemon uses ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) from its own environment,',
    'read when it started, else the vault entry ANTHROPIC_API_KEY. A daemon started before you exported',
    'the key does not see it: `agentd stop` and run again, or `agentd vault set ANTHROPIC_API_KEY`.',
    'No key at all? `agentd demo` shows the whole thing with an offline scripted model.',
  ].join('\n'),
  summary: 'prompt a session and stream the turn in the terminal (tools, permissions inline, Ctrl-C interrupts)',
  options: { workspace: { type: 'string' }, session: { type: 'string' }, model: { type: 'string' }, yes: { type: 'boolean', short: 'y' } },
  args: ['prompt...'],
  params: { sessionId: '--session', content: '"<prompt>"' },
  async run({ values, positionals }, ctx) {
    const text = positionals.join(' ').trim();
    if (!text) throw new UsageError('missing "<prompt>"');
    const existing = typeof values.session === 'string' ? checked(SessionId, values.session, '--session') : undefined;
    if (existing && (values.workspace !== undefined || values.model !== undefined)) {
      throw new UsageError('--workspace and --model apply to a new session; drop them with --session');
    }
    const yes = values.yes === true;
    const view = new TurnView({ text: process.stdout, info: process.stderr });
    let sessionId: string | undefined;
    const questions = terminalPermissions(view, yes, () => sessionId);
    const client = await connect({ clientName: 'agentd-run', clientVersion: ctx.version, explicit: true, onPermissionRequest: questions.answer });
    try {
      const noKey = await missingApiKey(client);
      if (noKey) {
        process.stderr.write(`${noKey}\n`);
        return 1;
      }
      if (existing) {
        sessionId = (await client.request(SessionGet, { sessionId: existing })).sessionId;
        process.stderr.write(`session ${sessionId}\n`);
      } else {
        const workspace = resolve(typeof values.workspace === 'string' ? values.workspace : process.cwd());
        sessionId = (
          await client.request(SessionCreate, {
            workspace,
            title: oneLine(text, 80),
            ...(typeof values.model === 'string' ? { model: values.model } : {}),
            ...(yes ? { permissions: { default: 'allow' as const } } : {}),
          })
        ).sessionId;
        process.stderr.write(`session ${sessionId} in ${workspace} (continue with --session ${sessionId})\n`);
      }
      return exitCodeFor(await promptAndFollow(client, sessionId, text, view), 'agentd run', sessionId);
    } finally {
      questions.close();
      client.close();
    }
  },
};
