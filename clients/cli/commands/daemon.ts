import { DaemonStatus, DaemonStop } from '../../../protocol/index.js';
import { DialError } from '../../lib/dial.js';
import type { Command } from '../context.js';
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

export const stop: Command = {
  usage: 'agentd stop',
  summary: 'stop the daemon after it drains in-flight work',
  options: {},
  args: [],
  async run(_args, ctx) {
    let client;
    try {
      client = await ctx.connect(false);
    } catch (error) {
      if (!(error instanceof DialError)) throw error;
      ctx.out('no agentd daemon is running');
      return 0;
    }
    await client.request(DaemonStop, {});
    await client.closed;
    ctx.out('daemon stopped');
    return 0;
  },
};
