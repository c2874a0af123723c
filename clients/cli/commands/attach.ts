import { createInterface } from 'node:readline';
import type { z } from 'zod';
import { SessionAttach, SessionInterrupt, SessionPrompt, type Event, type PermissionRequest } from '../../../protocol/index.js';
import { connect, notOurSession, type AgentdClient } from '../../lib/client.js';
import { followSession } from '../../lib/follow.js';
import { type Command, intOption, sessionIdArg } from '../context.js';
import { stoppedNote } from '../render.js';
import { AttachQuestions } from '../questions.js';
import { TurnView } from './run.js';

type Question = z.output<typeof PermissionRequest.params>;

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
    const from = intOption(values, 'from') ?? 0;
    const observer = values.observer === true;
    const role = observer ? 'observer' : 'controller';
    const view = new TurnView({ text: process.stdout, info: process.stdout });
    const questions = new AttachQuestions(view);
    const open = async (explicit: boolean): Promise<AgentdClient> => {
      const c = await connect({
        clientName: `agentd-attach (${role})`,
        clientVersion: ctx.version,
        explicit,
        ...(observer
          ? {}
          : { onPermissionRequest: (q: Question) => (q.sessionId === sessionId ? questions.ask(q) : Promise.reject(notOurSession(q.sessionId, 'agentd attach'))) }),
      });
      try {
        await c.request(SessionAttach, { sessionId, role });
      } catch (error) {
        c.close();
        throw error;
      }
      return c;
    };
    // An unknown session fails here, at once, before anything follows.
    let first: AgentdClient | undefined = await open(true);
    let client: AgentdClient | undefined;
    let stopped = false;
    // Lines typed before the (re)connection is up wait for it rather than fail.
    let connected!: (c: AgentdClient) => void;
    let ready = new Promise<AgentdClient>((r) => (connected = r));
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    const show = (event: Event) => {
      const d = event.data;
      if (event.type === 'user.message') view.note(`you> ${typeof d.content === 'string' ? d.content : JSON.stringify(d.content)}`);
      else if (event.type === 'permission.resolved') {
        questions.settled(String(d.toolUseId));
        view.note(`  (${String(d.decision)} by ${String(d.by)})`);
      } else if (typeof d.turnId === 'string' || event.type === 'sandbox.provisioned') view.event(event, String(d.turnId ?? ''));
    };
    const lines = observer ? undefined : createInterface({ input: process.stdin, terminal: false });
    lines?.on('line', (line) => void onLine(line.trim()));
    lines?.on('close', () => stop.abort());
    const onLine = async (line: string) => {
      if (!line || questions.answer(line)) return;
      if (stopped) return view.note('! the daemon is stopped; nothing was sent (start it with `agentd start`)');
      try {
        const c = await ready;
        if (line === '/interrupt') await c.request(SessionInterrupt, { sessionId });
        else await c.request(SessionPrompt, { sessionId, content: line });
      } catch (error) {
        view.note(`! ${(error as Error).message}`);
      }
    };
    const lost = () => {
      client = undefined;
      questions.disconnected();
      ready = new Promise<AgentdClient>((r) => (connected = r));
    };
    await followSession({
      sessionId,
      from,
      signal: stop.signal,
      // One connection follows, prompts and answers; a reconnect re-attaches with the same role.
      connect: async (isFirst) => {
        const c = isFirst && first ? first : await open(false);
        first = undefined;
        client = c;
        stopped = false;
        connected(c);
        return c;
      },
      onEvent: show,
      onReconnecting: () => {
        lost();
        view.note('· connection to the daemon lost; reconnecting...');
      },
      onStopped: (reason) => {
        lost();
        stopped = true;
        view.note(`· ${stoppedNote(reason)}`);
      },
      onResumed: () => view.note('· the daemon runs again; following on'),
    });
    client?.close();
    // stdin would keep the process alive after the follow ends.
    lines?.close();
    process.stdin.destroy();
    return 0;
  },
};
