import type { z } from 'zod';
import { AgentdError, ErrorCode, SessionId } from '../../protocol/index.js';
import { connect, type AgentdClient } from '../lib/client.js';
import { type Options, parseStrict, UsageError, type Values } from './args.js';

export { type Options, UsageError, type Values };

export interface Command {
  usage: string;
  summary: string;
  options: Options;
  /** Positional arguments by name; a last name ending in `...` takes all the rest. More is a usage error. */
  args: readonly string[];
  /** How a params field the daemon rejects reads on this command line, where not `--<field>` (`name` → `NAME`). */
  params?: Record<string, string>;
  run(args: { values: Values; positionals: string[] }, ctx: CliContext): Promise<number>;
}

export class CliContext {
  private client: AgentdClient | undefined;

  constructor(readonly version: string) {}

  /**
   * A connection to the daemon, started when none runs (unless `autostart` is false):
   * the person ran this command, so even a daemon stopped with `agentd stop` is started.
   */
  async connect(autostart = true): Promise<AgentdClient> {
    this.client ??= await connect({ clientName: 'agentd-cli', clientVersion: this.version, autostart, explicit: true });
    return this.client;
  }

  out(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  json(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** A command's answer: as JSON with --json, else as the text `render` makes of it. */
  print<T>(values: Values, result: T, render: (result: T) => string): void {
    if (values.json) this.json(result);
    else this.out(render(result));
  }

  close(): void {
    this.client?.close();
  }
}

/** Strict parsing: an unknown option, a missing option value or an argument too many is a usage error. */
export function parse(command: Command, argv: string[]): { values: Values; positionals: string[] } {
  const variadic = command.args.at(-1)?.endsWith('...') === true;
  return parseStrict(argv, command.options, variadic ? Infinity : command.args.length);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: `30s`, `500ms`, `2m`, `12h`, `30d`, or a number of seconds. */
export function durationOption(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(raw).trim());
  if (!m) throw new UsageError(`--${name} must be a duration such as 30s, 500ms, 2m, 12h or 30d, not ${String(raw)}`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!);
}

/** An integer option of at least `min` (default 0), or undefined when absent. */
export function intOption(values: Values, name: string, min = 0): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be a ${min === 0 ? 'non-negative' : min === 1 ? 'positive' : `>= ${min}`} integer, not ${String(raw)}`);
  }
  return n;
}

/** `--max-tokens N` and `--max-cost USD` as a session budget (empty when neither is given). */
export function budgetOptions(values: Values): { maxTokens?: number; maxCost?: number } {
  const maxTokens = intOption(values, 'max-tokens', 1);
  const maxCost = values['max-cost'] === undefined ? undefined : Number(values['max-cost']);
  if (maxCost !== undefined && !(maxCost > 0)) throw new UsageError(`--max-cost must be a positive number of US dollars, not ${String(values['max-cost'])}`);
  return { ...(maxTokens !== undefined ? { maxTokens } : {}), ...(maxCost !== undefined ? { maxCost } : {}) };
}

export function requirePositional(positionals: string[], index: number, name: string): string {
  const value = positionals[index];
  if (value === undefined) throw new UsageError(`missing <${name}>`);
  return value;
}

/** A value checked against the protocol's own schema, so that a malformed one never reaches the daemon. */
export function checked(schema: z.ZodType<string>, value: string, what: string): string {
  const result = schema.safeParse(value);
  if (!result.success) throw new UsageError(`${what}: ${result.error.issues[0]?.message ?? 'malformed'}, not ${JSON.stringify(value)}`);
  return result.data;
}

/** The positional words from `index` on, as one text; a usage error when there are none. */
export function textArg(positionals: string[], index: number, name: string): string {
  const text = positionals.slice(index).join(' ');
  if (!text) throw new UsageError(`missing <${name}>`);
  return text;
}

/** The positional session id at `index`, well formed. */
export function sessionIdArg(positionals: string[], index: number): string {
  return checked(SessionId, requirePositional(positionals, index, 'sessionId'), '<sessionId>');
}

/**
 * A daemon's answer that the command line was wrong (bad params, a position the session
 * does not have), in the command line's words; undefined for any other error.
 */
export function usageErrorFrom(error: unknown, command: Command): UsageError | undefined {
  if (!(error instanceof AgentdError)) return undefined;
  if (error.code === ErrorCode.InvalidPosition) return new UsageError(error.message);
  if (error.code !== ErrorCode.InvalidParams) return undefined;
  const issues = (error.data as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues;
  if (!issues?.length) return new UsageError(error.message.replace(/^invalid params for \S+: /, ''));
  const word = (path: string) =>
    command.params?.[path] ?? (path === 'sessionId' ? '<sessionId>' : path in command.options ? `--${path}` : path);
  return new UsageError(issues.map((i) => `${word(i.path)}: ${i.message}`).join('; '));
}
