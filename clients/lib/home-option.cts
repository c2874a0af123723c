/**
 * `--home DIR` for the commands an editor or MCP host starts (`agentd stdio|mcp|acp`):
 * hosts start them with a minimal environment, where setting AGENTD_HOME is awkward or
 * impossible. The option sets it for this process, so the daemon it dials (or starts)
 * is that data dir's. CommonJS: `agentd stdio` loads no ESM.
 */
import { resolve } from 'node:path';

/** A `--home` without a directory. */
export class HomeOptionError extends Error {}

/** Applies `--home DIR` / `--home=DIR` (the last one wins) and returns the other arguments. */
export function takeHomeOption(argv: string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let dir: string | undefined;
    if (arg === '--home') {
      dir = argv[++i];
      if (dir === undefined || dir === '' || dir.startsWith('--')) throw new HomeOptionError('--home needs a directory: --home DIR');
    } else if (arg.startsWith('--home=')) {
      dir = arg.slice('--home='.length);
      if (dir === '') throw new HomeOptionError('--home needs a directory: --home=DIR');
    } else {
      rest.push(arg);
      continue;
    }
    process.env.AGENTD_HOME = resolve(dir);
  }
  return rest;
}
