import { DaemonStatus, DaemonStop, DaemonStoppingNotification, DEFAULT_STOP_TIMEOUT_MS } from '../../../protocol/index.js';
import { DialError } from '../../lib/dial.js';
import { type Command, durationOption } from '../context.js';
import { renderStatus } from '../render.js';

export const status: Command = {
  usage: 'agentd status [--json]',
  summary: 'show whether the daemon runs, and its figures (exit 3 when it does not run)',
  options: { json: { type: 'boolean' } },
  args: [],
  async run({ values }, ctx) {
    let client;
    try {
      client = await ctx.connect(false);
    } catch (error) {
      if (!(error instanceof DialError)) throw error;
      if (values.json) ctx.json({ running: false, reason: error.message });
      else ctx.out(`not running: ${error.message}`);
      return 3;
    }
    const result = await client.request(DaemonStatus, {});
    if (values.json) ctx.json({ running: true, ...result });
    else ctx.out(renderStatus(result));
    return 0;
  },
};

export const start: Command = {
  usage: [
    'agentd start',
    '',
    'Starts the daemon in the background unless it runs, and returns once it answers. It is the',
    'way back after `agentd stop`: until a command like this one starts it, editors and followers',
    'wait instead of starting it themselves.',
  ].join('\n'),
  summary: 'start the daemon in the background (also after `agentd stop`)',
  options: {},
  args: [],
  async run(_args, ctx) {
    let running = true;
    const client = await ctx.connect(false).catch((error: unknown) => {
      if (!(error instanceof DialError)) throw error;
      running = false;
      return ctx.connect(true);
    });
    const { pid, socketPath } = await client.request(DaemonStatus, {});
    ctx.out(`${running ? 'already running' : 'started'}: agentd daemon pid ${pid} on ${socketPath}`);
    return 0;
  },
};

/** How long `agentd stop` waits for the process to exit once it closed its connections. */
const EXIT_WAIT_MS = 10_000;

export const stop: Command = {
  usage: [
    'agentd stop [--timeout 30s]',
    '',
    'Stops the daemon on purpose. Every connected client is told: `log --follow`, `attach`, editors',
    '(`agentd stdio`, VS Code, ACP) and `agentd mcp` wait or exit instead of starting it again; only a',
    'command you run starts it (`agentd start`, `agentd run`, `agentd sessions`, ...).',
    '',
    'A running turn is paused, not ended. Nothing new starts (no model call, no tool call, no turn);',
    'a model call or tool call already in flight may finish and is recorded, for up to --timeout',
    '(default 30s; 0 cuts it off at once; also 500ms, 2m). Whatever still runs then is cut off as in a',
    'crash. When the daemon next starts, the turn carries on from the log: a cut-off model call is',
    'made again, a cut-off tool call gets an `interrupted` result (it may or may not have completed),',
    'an unanswered permission question is asked again. Returns once the daemon process has exited.',
  ].join('\n'),
  summary: 'stop the daemon on purpose, after running model and tool calls reach a durable point (--timeout, default 30s)',
  options: { timeout: { type: 'string' } },
  args: [],
  async run({ values }, ctx) {
    const timeoutMs = durationOption(values, 'timeout') ?? DEFAULT_STOP_TIMEOUT_MS;
    let client;
    try {
      client = await ctx.connect(false);
    } catch (error) {
      if (!(error instanceof DialError)) throw error;
      ctx.out('no agentd daemon is running');
      return 0;
    }
    const { pid } = await client.request(DaemonStatus, {});
    client.onNotification(DaemonStoppingNotification, ({ runningTurns, drainMs }) => {
      if (runningTurns > 0) ctx.out(`stopping: waiting up to ${drainMs / 1000} s for ${runningTurns} running turn${runningTurns === 1 ? '' : 's'} to reach a durable point...`);
    });
    await client.request(DaemonStop, { timeoutMs });
    await client.closed;
    if (!(await exited(pid, EXIT_WAIT_MS))) {
      process.stderr.write(`agentd stop: the daemon closed its connections but pid ${pid} has not exited after ${EXIT_WAIT_MS / 1000} s\n`);
      return 1;
    }
    ctx.out('daemon stopped');
    return 0;
  },
};

/** Whether the process is gone within `ms`. */
async function exited(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let wait = 5; Date.now() < deadline; wait = Math.min(wait * 2, 100)) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
      throw error;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
  return false;
}
