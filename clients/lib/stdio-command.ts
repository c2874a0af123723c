import { HomeOptionError, takeHomeOption } from './home-option.cjs';

/**
 * The start of a command that speaks a protocol on stdout (`agentd mcp`, `agentd
 * acp`): --help, `--home DIR`, no other arguments, and a stdout that only frames
 * reach. Returns the exit code to stop with, or undefined to go on serving.
 */
export function startStdioCommand(name: string, argv: string[], usage: string): number | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    // stderr even for help: nothing but frames ever goes to these commands' stdout.
    process.stderr.write(usage);
    return 0;
  }
  try {
    argv = takeHomeOption(argv);
  } catch (error) {
    if (!(error instanceof HomeOptionError)) throw error;
    process.stderr.write(`agentd ${name}: ${error.message}\n${usage}`);
    return 2;
  }
  if (argv.length > 0) {
    process.stderr.write(`agentd ${name}: unexpected arguments: ${argv.join(' ')}\n${usage}`);
    return 2;
  }
  // A dependency that logs with console.log must not corrupt the stream.
  console.log = console.info = console.debug = console.error;
  return undefined;
}
