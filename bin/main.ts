/**
 * The `agentd` command's ESM half: the composition root, the one place that may reach
 * both the daemon and the clients. Each command loads only its own module.
 */
import { readFileSync } from 'node:fs';
import { type Options, parseStrict } from '../clients/cli/args.js';

/** A command module: `run` gets the arguments after the command name. */
interface Entry {
  run(argv: string[], version: string): Promise<number>;
}

interface EntrySpec {
  module: string;
  usage: string;
  /** The options it takes; anything else (or any argument) is a usage error before the module loads. */
  options: Options;
  /** The module prints a longer help of its own for --help. */
  ownHelp?: boolean;
}

/** Commands with an entry module of their own; everything else is the CLI's. */
const ENTRIES: Record<string, EntrySpec> = {
  daemon: {
    module: '../daemon/main.js',
    usage: 'agentd daemon [--isolation-floor bwrap|namespaces|none] [--listen HOST:PORT [--tls-cert FILE --tls-key FILE]]',
    options: { 'isolation-floor': { type: 'string' }, listen: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' } },
  },
  doctor: { module: '../daemon/doctor.js', usage: 'agentd doctor [--json]', options: { json: { type: 'boolean' } } },
  migrate: { module: '../daemon/migrate.js', usage: 'agentd migrate --to postgres://...', options: { to: { type: 'string' } }, ownHelp: true },
  // Their help goes to stderr: their stdout carries protocol frames only.
  mcp: { module: '../clients/mcp/main.js', usage: 'agentd mcp', options: {}, ownHelp: true },
  acp: { module: '../clients/acp/main.js', usage: 'agentd acp', options: {}, ownHelp: true },
};

/** Exit code for a command line the entry does not take (printed to stderr), or undefined when it is fine. */
function refuse(name: string, spec: EntrySpec, argv: string[]): number | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    if (spec.ownHelp) return undefined;
    process.stdout.write(`usage: ${spec.usage}\n`);
    return 0;
  }
  try {
    parseStrict(argv, spec.options, 0);
    return undefined;
  } catch (error) {
    process.stderr.write(`agentd ${name}: ${(error as Error).message}\nusage: ${spec.usage}\n`);
    return 2;
  }
}

function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv;
  const entry = ENTRIES[command];
  if (entry) return refuse(command, entry, rest) ?? ((await import(entry.module)) as Entry).run(rest, packageVersion());
  const { runCli } = await import('../clients/cli/main.js');
  return runCli(argv, packageVersion());
}
