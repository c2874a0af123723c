import * as z from 'zod/mini';
import { defineTool, type ToolOutput } from './define.js';
import { BASH_DEFAULT_TIMEOUT_MS as DEFAULT_TIMEOUT_MS, BASH_MAX_TIMEOUT_MS as MAX_TIMEOUT_MS } from './time-limit.js';

export const bashTool = defineTool({
  name: 'bash',
  description:
    'Run a bash command in a persistent shell in the workspace. The working directory and exported variables persist between calls. ' +
    'stdin is /dev/null (interactive programs will not get input). Output (stdout and stderr together) is capped at 30,000 characters, ' +
    `keeping the beginning and the end. The command and everything it started are killed after timeout_ms (default ${DEFAULT_TIMEOUT_MS}, max ${MAX_TIMEOUT_MS}). ` +
    'The result ends with the exit code.',
  input: z.object({
    command: z.string().check(z.describe('The command to run (may be several lines)')),
    timeout_ms: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(MAX_TIMEOUT_MS), z.describe(`Time limit in milliseconds (default ${DEFAULT_TIMEOUT_MS})`))),
  }),
  async handler(input, ctx): Promise<ToolOutput> {
    const timeoutMs = input.timeout_ms ?? DEFAULT_TIMEOUT_MS;
    const run = await ctx.shell.run(input.command, timeoutMs, ctx.signal);
    const output = run.output.replace(/\n$/, '');
    const lines = [output.length > 0 ? output : '(no output)'];
    if (run.ended === 'exited') lines.push(`[exit code: ${run.exitCode}]`);
    const killed = run.unkilled === 0 ? 'the command and every process it started were killed' : `${run.unkilled} processes the command started could not be killed`;
    if (run.ended === 'timeout') lines.push(`[timed out after ${timeoutMs} ms; ${killed}; the shell is still running]`);
    if (run.ended === 'interrupted') lines.push(`[interrupted; ${killed}]`);
    if (run.ended === 'shell_exited') lines.push(`[exit code: ${run.exitCode}]`);
    for (const note of run.notes) lines.push(`[${note}]`);
    return {
      content: [{ type: 'text', text: lines.join('\n') }],
      isError: run.ended === 'timeout' || run.ended === 'interrupted' || run.limitReached,
      timedOut: run.ended === 'timeout',
    };
  },
});
