#!/usr/bin/env node
/**
 * The `agentd` command. CommonJS on purpose: editors spawn `agentd stdio` on every
 * start, and that path then never loads the ESM loader (about 3 ms) nor anything but
 * the socket code. Every other command goes to the ESM composition root, bin/main.
 */
function finish(code: number): void {
  process.exitCode = code;
}

function fail(error: unknown): void {
  process.stderr.write(`agentd: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 1;
}

const argv = process.argv.slice(2);
if (argv[0] === 'stdio') {
  (require('../clients/cli/stdio.cjs') as typeof import('../clients/cli/stdio.cjs')).run(argv.slice(1)).then(finish, fail);
} else {
  import('./main.js').then((m) => m.main(argv)).then(finish, fail);
}
