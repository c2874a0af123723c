#!/usr/bin/env node
/**
 * The `agentd` command: the composition root, the one place that may reach both the
 * daemon and the clients. Each command loads only what it needs, so that `agentd
 * stdio` (spawned by editors on every start) stays fast.
 */
import { readFileSync } from 'node:fs';

function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command === 'daemon') {
    const { runDaemon } = await import('../daemon/main.js');
    return runDaemon(packageVersion());
  }
  if (command === 'doctor') {
    const { runDoctor } = await import('../daemon/doctor.js');
    return runDoctor(argv.slice(1));
  }
  if (command === 'stdio') {
    const { runStdio } = await import('../clients/cli/stdio.js');
    return runStdio();
  }
  const { runCli } = await import('../clients/cli/main.js');
  return runCli(argv, packageVersion());
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`agentd: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
