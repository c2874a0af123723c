import { createInterface } from 'node:readline';
import { SessionAttach, SessionEvents, SessionInterrupt, SessionPrompt, type Event, type PermissionDecision } from '../../../protocol/index.js';
import { connect, type AgentdClient } from '../../lib/client.js';
import { followSession } from '../../lib/follow.js';
import { type Command, intOption, sessionIdArg } from '../context.js';
import { shortInput, TurnView } from './run.js';

const ANSWERS: Record<string, PermissionDecision> = { y: 'allow', yes: 'allow', n: 'deny', no: 'deny', a: 'allow_always', always: 'allow_always' };

/**
 * `agentd attach <sessionId>`: the same live session from a terminal, beside any other
 * client. It prints the log from --from (default: all of it) and follows it across
 * daemon restarts; as a controller, each line typed is a prompt (/interrupt stops the
 * turn) and permission questions are answered with y / n / a; --observer only watches.
 */
export const attach: Command = {
  usage: 'agentd attach <sessionId> [--observer] [--from N]',
  summary: 'follow a live session from a terminal, prompt it and answer its questions (--observer: watch only)',
  options: { observer: { type: 'boolean' }, from: { type: 'string' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const observer = values.observer === true;
    const role = observer ? 'observer' : 'controller';
    const view = new TurnView({ text: process.stdout, info: process.stdout });
    const pending: Array<{ toolUseId: string; answer: (d: PermissionDecision) => void }> = [];
    let client: AgentdClient | undefined;
    // Lines typed before the (re)connection is up wait for it rather than fail.
    let connected!: (c: AgentdClient) => void;
    let ready = new Promise<AgentdClient>((r) => (connected = r));
    const open = async (): Promise<AgentdClient> => {
      const c = await connect({
        clientName: `agentd-attach (${role})`,
        clientVersion: ctx.version,
        ...(observer
          ? {}
          : {
              onPermissionRequest: (q) =>
                new Promise((resolve) => {
                  view.note(`? ${q.tool} ${shortInput(q.tool, q.input)} wants to run: allow? [y]es / [n]o / [a]lways`);
                  pending.push({ toolUseId: q.toolUseId, answer: (decision) => resolve({ decision }) });
                }),
            }),
      });
      await c.request(SessionAttach, { sessionId, role });
      return c;
    };
    // Fail fast on a bad id before following forever.
    const first = await open();
    await first.request(SessionEvents, { sessionId, limit: 1 });
    first.close();
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    const show = (event: Event) => {
      const d = event.data;
      if (event.type === 'user.message') view.note(`you> ${typeof d.content === 'string' ? d.content : JSON.stringify(d.content)}`);
      else if (event.type === 'permission.resolved') {
        const i = pending.findIndex((p) => p.toolUseId === d.toolUseId);
        if (i >= 0) pending.splice(i, 1);
        view.note(`  (${String(d.decision)} by ${String(d.by)})`);
      } else if (typeof d.turnId === 'string') view.event(event, d.turnId);
    };
    const lines = observer ? undefined : createInterface({ input: process.stdin, terminal: false });
    lines?.on('line', (line) => void onLine(line.trim()));
    lines?.on('close', () => stop.abort());
    const onLine = async (line: string) => {
      if (!line) return;
      const question = pending[0];
      if (question && ANSWERS[line.toLowerCase()]) {
        pending.shift();
        question.answer(ANSWERS[line.toLowerCase()]!);
        return;
      }
      try {
        const c = await ready;
        if (line === '/interrupt') await c.request(SessionInterrupt, { sessionId });
        else await c.request(SessionPrompt, { sessionId, content: line });
      } catch (error) {
        view.note(`! ${(error as Error).message}`);
      }
    };
    await followSession({
      sessionId,
      from: intOption(values, 'from') ?? 0,
      signal: stop.signal,
      // One connection follows, prompts and answers; a reconnect re-attaches with the same role.
      connect: async () => {
        client = await open();
        connected(client);
        return client;
      },
      onEvent: show,
      onReconnecting: () => {
        client = undefined;
        ready = new Promise<AgentdClient>((r) => (connected = r));
        view.note('· connection to the daemon lost; reconnecting...');
      },
    });
    client?.close();
    // stdin would keep the process alive after the follow ends.
    lines?.close();
    process.stdin.destroy();
    return 0;
  },
};
