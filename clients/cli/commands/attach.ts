import { createInterface } from 'node:readline';
import type { z } from 'zod';
import {
  SessionAttach,
  SessionInterrupt,
  SessionPrompt,
  type Event,
  type PermissionDecision,
  type PermissionRequest,
} from '../../../protocol/index.js';
import { connect, notOurSession, type AgentdClient } from '../../lib/client.js';
import { followSession } from '../../lib/follow.js';
import { type Command, intOption, sessionIdArg } from '../context.js';
import { stoppedNote } from '../render.js';
import { sessionLabel, shortInput, TurnView } from './run.js';

type Question = z.output<typeof PermissionRequest.params>;

const ANSWERS: Record<string, PermissionDecision> = { y: 'allow', yes: 'allow', n: 'deny', no: 'deny', a: 'allow_always', always: 'allow_always' };

/**
 * The open questions of the attached session, each shown once however often the daemon
 * asks it (it asks again on every reconnection), answered by the first y / n / a typed
 * after it was shown. An answer typed while the connection is down is kept and given
 * when the daemon asks again.
 */
class Questions {
  private readonly open = new Map<string, { question: Question; reply?: (d: PermissionDecision) => void; decided?: PermissionDecision }>();

  constructor(private readonly view: TurnView) {}

  /** The daemon asks (again): the promise settles with the person's answer. */
  ask(question: Question): Promise<{ decision: PermissionDecision }> {
    return new Promise((resolve) => {
      const reply = (decision: PermissionDecision) => resolve({ decision });
      const known = this.open.get(question.toolUseId);
      if (known?.decided) return reply(known.decided);
      if (known) return void (known.reply = reply);
      this.open.set(question.toolUseId, { question, reply });
      this.view.note(`? ${sessionLabel(question)}: ${question.tool} ${shortInput(question.tool, question.input)} wants to run: allow? [y]es / [n]o / [a]lways`);
    });
  }

  /** A line typed: the answer to the oldest question not yet answered, if it is one. */
  answer(line: string): boolean {
    const decision = ANSWERS[line.toLowerCase()];
    const entry = [...this.open.values()].find((e) => !e.decided);
    if (!decision || !entry) return false;
    entry.decided = decision;
    entry.reply?.(decision);
    entry.reply = undefined;
    return true;
  }

  /** The connection is gone: its requests can no longer be answered. */
  disconnected(): void {
    for (const entry of this.open.values()) entry.reply = undefined;
  }

  /** Answered (here or elsewhere) or withdrawn, as the log says. */
  settled(toolUseId: string): void {
    this.open.delete(toolUseId);
  }
}

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
    const questions = new Questions(view);
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
