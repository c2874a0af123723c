import { SessionEvents, type Event } from '../../../protocol/index.js';
import { connect } from '../../lib/client.js';
import { followSession } from '../../lib/follow.js';
import { type Command, intOption, sessionIdArg, UsageError } from '../context.js';
import { renderEvent, stoppedNote } from '../render.js';

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
    const client = await ctx.connect();
    if (!values.follow) {
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
    // Fail fast on a bad id before following forever.
    await client.request(SessionEvents, { sessionId, from, limit: 1 });
    ctx.close();
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    await followSession({
      sessionId,
      from,
      signal: stop.signal,
      connect: (first) => connect({ clientName: 'agentd-cli-follow', clientVersion: ctx.version, explicit: first }),
      onEvent: print,
      onReconnecting: () => process.stderr.write('agentd: connection to the daemon lost; reconnecting...\n'),
      onStopped: (reason) => process.stderr.write(`agentd: ${stoppedNote(reason)}\n`),
      onResumed: () => process.stderr.write('agentd: the daemon runs again; following on\n'),
    });
    return 0;
  },
};
