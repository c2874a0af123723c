import { AgentdError } from '../../protocol/index.js';
import { DialError } from '../lib/dial.js';
import { start, status, stop } from './commands/daemon.js';
import { demo } from './commands/demo.js';
import { attach } from './commands/attach.js';
import { log } from './commands/log.js';
import { budget, remove, rename, rollback, steer, usage } from './commands/manage.js';
import { run } from './commands/run.js';
import { archive, create, fork, prompt, sessions } from './commands/session.js';
import { vault } from './commands/vault.js';
import { token } from './commands/token.js';
import { network } from './network.js';
import { CliContext, type Command, parse, UsageError, usageErrorFrom } from './context.js';

/** Commands with an entry module of their own (bin/agentd, bin/main), listed for --help. */
const EARLY = [
  ['daemon', 'run the daemon in the foreground (clients start it on demand) [--isolation-floor bwrap|namespaces|none] [--listen HOST:PORT --tls-cert F --tls-key F]'],
  ['stdio', 'editor bridge: pipe JSON-RPC frames between stdin/stdout and the daemon'],
  ['mcp', 'MCP server over stdio for MCP hosts (Claude Desktop, Claude Code): drive sessions as tools'],
  ['acp', 'Agent Client Protocol agent over stdio for editors such as Zed'],
  ['doctor', 'check what this machine offers agentd: isolation, sandbox uid, capabilities, seccomp, limits, masked paths, node-pty, LevelDB, data dir [--json]'],
  ['migrate', 'copy this data dir\'s sessions into a shared PostgreSQL log: --to postgres://... (daemon stopped)'],
] as const;

const commands: Record<string, Command> = {
  status,
  start,
  stop,
  sessions,
  new: create,
  prompt,
  steer,
  log,
  usage,
  rename,
  budget,
  network,
  rollback,
  delete: remove,
  attach,
  archive,
  fork,
  vault,
  token,
  run,
  demo,
};

function help(): string {
  const lines = [
    'agentd: a daemon that runs tool-using agent sessions',
    '',
    'usage: agentd <command> [options]',
    '',
    ...EARLY.map(([name, text]) => `  ${name.padEnd(10)} ${text}`),
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    '',
    'agentd <command> --help shows a command\'s options. Data dir: $AGENTD_HOME (default ~/.agentd).',
    'Any command may go to a daemon over the network: --remote wss://HOST:PORT (or AGENTD_REMOTE), with the',
    'token in AGENTD_TOKEN or the file --token-file (AGENTD_TOKEN_FILE) names; AGENTD_REMOTE_CA: a PEM file to trust.',
  ];
  return lines.join('\n');
}

/**
 * `--remote URL` and `--token-file FILE` go with any command: they become AGENTD_REMOTE and
 * AGENTD_TOKEN_FILE for this process, so that every connection it makes (follows and
 * reconnects included) goes to that daemon. The token itself is never an argument.
 */
function takeRemoteOptions(argv: string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...rest, ...argv.slice(i)];
    const m = /^--(remote|token-file)(?:=(.*))?$/.exec(arg);
    if (!m) {
      rest.push(arg);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${m[1]} needs a value`);
    process.env[m[1] === 'remote' ? 'AGENTD_REMOTE' : 'AGENTD_TOKEN_FILE'] = value;
  }
  return rest;
}

export async function runCli(argv: string[], version: string): Promise<number> {
  let args: string[];
  try {
    args = takeRemoteOptions(argv);
  } catch (error) {
    process.stderr.write(`agentd: ${(error as Error).message}\n`);
    return 2;
  }
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`agentd: unknown command ${name}\n\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  const ctx = new CliContext(version);
  try {
    return await command.run(parse(command, rest), ctx);
  } catch (error) {
    // Mistakes in the command line, whether caught here or by the daemon: exit 2, in the CLI's words.
    const usage = error instanceof UsageError ? error : usageErrorFrom(error, command);
    if (usage) {
      process.stderr.write(`agentd ${name}: ${usage.message}\nusage: ${command.usage}\n`);
      return 2;
    }
    if (error instanceof AgentdError) {
      process.stderr.write(`agentd ${name}: ${error.message} (${AgentdError.codeName(error.code)} ${error.code})\n`);
      return 1;
    }
    if (error instanceof DialError) {
      process.stderr.write(`agentd ${name}: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    ctx.close();
  }
}
