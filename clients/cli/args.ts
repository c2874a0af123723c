import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** A mistake in how a command was called: printed with its usage, exit 2. */
export class UsageError extends Error {}

/**
 * Node's strict parseArgs, plus a limit on positional arguments (`maxPositionals`,
 * Infinity for a command that takes text): an unknown option, a missing option value
 * or an argument too many is a UsageError with a short message.
 */
export function parseStrict(argv: string[], options: Options, maxPositionals: number): { values: Values; positionals: string[] } {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
    throw new UsageError(code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown ? `unknown option ${unknown}` : message);
  }
  const extra = parsed.positionals.slice(maxPositionals);
  if (extra.length > 0) throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''}: ${extra.join(' ')}`);
  return parsed;
}
