import { createInterface } from 'node:readline';
import { SessionInterrupt, SessionPrompt, SessionSteer } from '../../../protocol/index.js';
import { DaemonLink, socketConnector } from '../../lib/link.js';
import { TranscriptFold, type TranscriptChange } from '../../lib/transcript.js';
import { type Command, intOption, sessionIdArg } from '../context.js';
import { AttachQuestions } from '../questions.js';
import { linkNotes } from '../render.js';
import { TurnView } from '../turn-view.js';

/**
 * `agentd attach <sessionId>`: the same live session from a terminal, beside any other
 * client. It prints the log from --from (default: all of it) and follows it across
 * daemon restarts; as a controller, each line typed is a prompt (/interrupt stops the
 * turn) and permission questions are answered with y / n / a; --observer only watches.
 */
export const attach: Command = {
  usage: 'agentd attach <sessionId> [--observer] [--from N]',
  summary: 'follow a live session from a terminal, prompt it (/steer TEXT: into the running turn; /interrupt) and answer its questions (--observer: watch only)',
  options: { observer: { type: 'boolean' }, from: { type: 'string' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const from = intOption(values, 'from') ?? 0;
    const observer = values.observer === true;
    const role = observer ? 'observer' : 'controller';
    const view = new TurnView({ text: process.stdout, info: process.stdout });
    const questions = new AttachQuestions(view);
    // One link follows, prompts and answers; every new connection attaches again with the same role.
    const link = new DaemonLink({
      clientName: 'agentd attach',
      connector: socketConnector({ clientName: `agentd-attach (${role})`, clientVersion: ctx.version }),
      keepConnected: true,
      explicitFirst: true,
      ...(observer ? {} : { onPermissionRequest: (q) => questions.ask(q) }),
    });
    const notes = linkNotes((line) => view.note(`· ${line}`));
    link.onState((state) => {
      if (state.kind !== 'connected') questions.disconnected();
      notes(state);
    });
    const stop = new AbortController();
    const lines = observer ? undefined : createInterface({ input: process.stdin, terminal: false });
    // An unknown session fails here, at once, before anything follows.
    const attached = link.attach(sessionId, role);
    const onLine = async (line: string) => {
      if (!line || questions.answer(line)) return;
      if (!(await attached.then(() => true, () => false))) return;
      if (link.state.kind === 'daemonStopped') return view.note('! the daemon is stopped; nothing was sent (start it with `agentd start`)');
      try {
        // Lines typed while the link reconnects wait for it rather than fail.
        const steer = /^\/steer\s+(\S[\s\S]*)$/.exec(line)?.[1];
        if (line === '/interrupt') await link.request(SessionInterrupt, { sessionId }, Infinity);
        else if (steer !== undefined) await link.request(SessionSteer, { sessionId, content: steer }, Infinity);
        else await link.request(SessionPrompt, { sessionId, content: line }, Infinity);
      } catch (error) {
        view.note(`! ${(error as Error).message}`);
      }
    };
    lines?.on('line', (line) => void onLine(line.trim()));
    lines?.on('close', () => stop.abort());
    process.once('SIGINT', () => stop.abort());
    try {
      await attached;
      const fold = new TranscriptFold();
      const show = (change: TranscriptChange) => {
        if (change.kind === 'user') return view.note(`you> ${typeof change.content === 'string' ? change.content : JSON.stringify(change.content)}`);
        if (change.kind === 'tool' && change.what === 'answered' && change.call.permission && change.call.permission.state !== 'asked') {
          questions.settled(change.call.toolUseId);
          return view.note(`  (${change.call.permission.state} by ${change.call.permission.by})`);
        }
        view.show(change);
      };
      const follower = link.follow(sessionId, from, {
        onEvents: (events) => fold.events(events).forEach(show),
        onDelta: (delta) => fold.delta(delta).forEach(show),
      });
      await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
      follower.dispose();
    } finally {
      await link.close();
      // stdin would keep the process alive after the follow ends.
      lines?.close();
      process.stdin.destroy();
    }
    return 0;
  },
};
