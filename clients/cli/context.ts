import { parseArgs, type ParseArgsConfig } from 'node:util';
import { connect, type AgentdClient } from '../lib/client.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  usage: string;
  summary: string;
  options: Options;
  run(args: { values: Values; positionals: string[] }, ctx: CliContext): Promise<number>;
}

/** A mistake in how the command was called: printed with its usage, exit 2. */
export class UsageError extends Error {}

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

  close(): void {
    this.client?.close();
  }
}

export function parse(command: Command, argv: string[]): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: command.options, allowPositionals: true, strict: true }) as {
      values: Values;
      positionals: string[];
    };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A duration: `30s`, `500ms`, `2m`, or a number of seconds. */
export function durationOption(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(raw).trim());
  if (!m) throw new UsageError(`--${name} must be a duration such as 30s, 500ms or 2m, not ${String(raw)}`);
  const scale = m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000;
  return Math.round(Number(m[1]) * scale);
}

export function intOption(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, not ${String(raw)}`);
  return n;
}

export function requirePositional(positionals: string[], index: number, name: string): string {
  const value = positionals[index];
  if (value === undefined) throw new UsageError(`missing <${name}>`);
  return value;
}
