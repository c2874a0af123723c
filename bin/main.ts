/**
 * The `agentd` command's ESM half: the composition root, the one place that may reach
 * both the daemon and the clients. Each command loads only its own module.
 */
import { readFileSync } from 'node:fs';

/** A command module: `run` gets the arguments after the command name. */
interface Entry {
  run(argv: string[], version: string): Promise<number>;
}

/** Commands with an entry module of their own; everything else is the CLI's. */
const ENTRIES: Record<string, string> = {
  daemon: '../daemon/main.js',
  doctor: '../daemon/doctor.js',
  migrate: '../daemon/migrate.js',
  mcp: '../clients/mcp/main.js',
  acp: '../clients/acp/main.js',
};

function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv;
  const entry = ENTRIES[command];
  if (entry) return ((await import(entry)) as Entry).run(rest, packageVersion());
  const { runCli } = await import('../clients/cli/main.js');
  return runCli(argv, packageVersion());
}
