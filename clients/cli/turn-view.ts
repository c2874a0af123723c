import type { PermissionDecision } from '../../protocol/index.js';
import { weakerIsolation } from '../lib/isolation.js';
import type { Notice, ToolUse, TranscriptChange, TurnEnd } from '../lib/transcript.js';
import { oneLine, shortInput } from './render.js';

interface Sink {
  write(text: string): unknown;
}

/** One line for a tool result: errors with their kind, else the first line and the size. */
export function shortResult(call: ToolUse): string {
  const result = call.result;
  const text = (result?.content ?? [])
    .map((b) => (b.type === 'text' ? b.text : `[${b.type}]`))
    .join('\n')
    .replace(/\r/g, '')
    .trimEnd();
  const lines = text === '' ? [] : text.split('\n');
  if (result?.isError) return `error [${result.errorKind ?? 'tool_error'}]: ${oneLine(lines[0] ?? '', 100)}`;
  if (call.name === 'read_file' && lines.length > 0) return `read ${lines.length} line${lines.length === 1 ? '' : 's'}`;
  const exit = /^\[exit code: (-?\d+)\]$/m.exec(text)?.[1];
  if (call.name === 'bash' && exit !== undefined) {
    // A command's verdict is usually its last line of output.
    const output = lines.filter((l) => !/^\[.*\]$/.test(l));
    const last = output.findLast((l) => l.trim() !== '');
    return `exit ${exit}${last ? `: ${oneLine(last, 80)}` : ''}${output.length > 1 ? `  (${output.length} lines)` : ''}`;
  }
  const first = oneLine(lines.find((l) => l.trim() !== '') ?? '(no output)', 80);
  return lines.length > 1 ? `${first}  (+${lines.length - 1} lines, ${text.length} chars)` : first;
}

/**
 * A transcript on a terminal, as it changes: the answer's text on `text` as it streams
 * (the durable reply only adds what the stream missed); tool calls, results and notes
 * on `info`, one compact line each. Which turns to show is the caller's choice.
 */
export class TurnView {
  private midLine = false;
  /** Called when a permission question was answered (by anyone); lets an open prompt close. */
  onPermissionResolved: ((toolUseId: string, decision: PermissionDecision, by: string) => void) | undefined;

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

  note(text: string): void {
    this.lineBreak();
    this.out.info.write(`${text}\n`);
  }

  /** Shows one change; returns how the turn ended when it did. */
  show(change: TranscriptChange): TurnEnd | undefined {
    switch (change.kind) {
      case 'text':
        if (change.fresh) {
          this.lineBreak();
          this.writeText(this.out.textPrefix ?? '');
        }
        this.writeText(change.text);
        return undefined;
      case 'tool':
        this.tool(change.call, change.what);
        return undefined;
      case 'notice':
        this.notice(change.notice);
        return undefined;
      case 'ended':
        this.lineBreak();
        return change.end;
      default:
        return undefined; // user messages and images are the caller's to show, unknown events nobody's
    }
  }

  private tool(call: ToolUse, what: Extract<TranscriptChange, { kind: 'tool' }>['what']): void {
    if (what === 'announced') this.note(`⏺ ${call.name} ${shortInput(call.name, call.input)}`);
    else if (what === 'result') this.note(`  ⎿  ${call.parallel ? `${call.name}: ` : ''}${shortResult(call)}`);
    else if (what === 'answered' && call.permission && call.permission.state !== 'asked') this.onPermissionResolved?.(call.toolUseId, call.permission.state, call.permission.by);
  }

  private notice(notice: Notice): void {
    switch (notice.type) {
      case 'model.retry':
        this.note(`· model call failed (${oneLine(notice.data.reason, 100)}); retry ${notice.data.attempt} in ${notice.data.delayMs} ms`);
        return;
      case 'sandbox.provisioned':
        this.note(`· sandbox ready (${notice.data.isolation}, ${notice.data.durationMs} ms)`);
        for (const warning of weakerIsolation(notice.data)) this.note(`! WARNING: weaker isolation: ${warning}`);
        return;
      case 'sandbox.lost':
        this.note(`· sandbox lost: ${oneLine(notice.data.reason, 100)}`);
        return;
      case 'context.compacted':
        this.note(`· older context compacted (up to seq ${notice.data.upToSeq})`);
        return;
      case 'network.decided':
        this.note(networkLine(notice.data));
        return;
      default:
        return;
    }
  }
}

/** One egress decision on one line: what was reached or refused, and by which rule. */
export function networkLine(d: { host: string; port: number; decision: 'allow' | 'deny'; reason: string }): string {
  return `${d.decision === 'allow' ? '· network: reached' : '✗ network: refused'} ${d.host}:${d.port} (${oneLine(d.reason, 120)})`;
}
