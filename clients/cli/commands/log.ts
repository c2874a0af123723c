import { SessionEvents, type Event } from '../../../protocol/index.js';
import { DaemonLink, socketConnector } from '../../lib/link.js';
import { type Command, intOption, sessionIdArg, UsageError } from '../context.js';
import { linkNotes, renderEvent } from '../render.js';

const PAGE = 1000;

export const log: Command = {
  usage: 'agentd log <sessionId> [--from N] [--to N] [--follow] [--json]',
  summary: 'print a session log (events [from, to)); --follow keeps printing live events, across daemon restarts',
  options: { from: { type: 'string' }, to: { type: 'string' }, follow: { type: 'boolean' }, json: { type: 'boolean' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const from = intOption(values, 'from') ?? 0;
    const to = intOption(values, 'to');
    if (to !== undefined && to < from) throw new UsageError('--to must not be below --from');
    if (values.follow && to !== undefined) throw new UsageError('--follow reads on without end; drop --to');
    const print = (event: Event) => (values.json ? ctx.json(event) : ctx.out(renderEvent(event)));
    if (!values.follow) {
      const client = await ctx.connect();
      for (let cursor: number | undefined = from; cursor !== undefined; ) {
        const page: { events: Event[]; headSeq: number; next?: number | undefined } = await client.request(SessionEvents, { sessionId, from: cursor, ...(to !== undefined ? { to } : {}), limit: PAGE });
        // Nothing printed is not a silent success: say where the log ends.
        if (cursor === from && from >= page.headSeq && to !== from) {
          process.stderr.write(`agentd log: no event at --from ${from}: the log of ${sessionId} ends at seq ${page.headSeq - 1}\n`);
        }
        page.events.forEach(print);
        cursor = page.next;
      }
      return 0;
    }
    // Follows across daemon restarts; only the first connection (this command) may start a daemon stopped on purpose.
    const link = new DaemonLink({
      clientName: 'agentd log',
      connector: socketConnector({ clientName: 'agentd-cli-follow', clientVersion: ctx.version }),
      keepConnected: true,
      explicitFirst: true,
    });
    link.onState(linkNotes((line) => process.stderr.write(`agentd: ${line}\n`)));
    try {
      // Fail fast on a bad id before following forever.
      await link.request(SessionEvents, { sessionId, from, limit: 1 });
      const stopped = new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      const follower = link.follow(sessionId, from, { onEvents: (events) => events.forEach(print) });
      await stopped;
      follower.dispose();
    } finally {
      await link.close();
    }
    return 0;
  },
};
