/**
 * Permission questions on a terminal, as `agentd run` and `agentd attach` ask them:
 * each names the session that asks, and each answers for its own session only.
 */
import { createInterface } from 'node:readline';
import type { z } from 'zod';
import { exactPattern, type PermissionDecision, type PermissionRequest } from '../../protocol/index.js';
import { notOurSession } from '../lib/client.js';
import type { TurnView } from './turn-view.js';
import { oneLine, shortInput } from './render.js';

type Question = z.output<typeof PermissionRequest.params>;
type Answer = { decision: PermissionDecision };

/** Which session asks, as every question shows it: its id and, when it has one, its title. */
function sessionLabel(q: Pick<Question, 'sessionId' | 'sessionTitle'>): string {
  return q.sessionTitle ? `session ${q.sessionId} "${oneLine(q.sessionTitle, 60)}"` : `session ${q.sessionId}`;
}

/** What a question asks about: a tool call, or (kind network) a connection the sandbox makes. */
function questionText(q: Question): string {
  if (q.kind === 'network') return `network access to ${String(q.input.host)}:${String(q.input.port)}${typeof q.input.toolUseId === 'string' ? ` (made by tool call ${q.input.toolUseId})` : ''}`;
  return `${q.tool} ${shortInput(q.tool, q.input)}`;
}

/**
 * Answers permission questions of the session `run` drives (`driven()`), on the
 * terminal, one at a time; --yes allows them. Without a terminal nobody could answer,
 * so the answer is no, with a note saying how to allow tools. A question about any
 * other session is refused (NotController): neither --yes nor a missing terminal ever
 * decides for a session `run` does not drive.
 */
export function terminalPermissions(
  view: TurnView,
  yes: boolean,
  driven: () => string | undefined,
): { answer(q: Question): Promise<Answer>; close(): void } {
  let queue: Promise<unknown> = Promise.resolve();
  /** The prompt on screen: it holds stdin open, so the run cannot end while it is there. */
  let open: { close(): void } | undefined;
  const ask = (q: Question): Promise<Answer> => {
    const what = questionText(q);
    // --yes allows tools; it opens no host: the network policy does that.
    if (yes && q.kind !== 'network') return Promise.resolve({ decision: 'allow' });
    if (!process.stdin.isTTY) {
      const how = q.kind === 'network' ? `allow it with: agentd network ${q.sessionId} --allow-host ${exactPattern(String(q.input.host), Number(q.input.port))}` : 'pass --yes to allow tools, or create the session with a permissions policy';
      view.note(`✗ denied ${what}: stdin is not a terminal, so nobody can answer; ${how}`);
      return Promise.resolve({ decision: 'deny' });
    }
    view.lineBreak();
    return new Promise<Answer>((resolveAnswer) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      const done = (decision: PermissionDecision) => {
        view.onPermissionResolved = undefined;
        open = undefined;
        rl.close();
        resolveAnswer({ decision });
      };
      open = rl;
      // The prompt holds the terminal in raw mode: Ctrl-C reaches us here, not as a signal.
      // The interrupt goes out first, so it ends the turn rather than the answer moving it on.
      rl.on('SIGINT', () => {
        process.stderr.write('^C\n');
        process.emit('SIGINT', 'SIGINT');
        done('deny');
      });
      view.onPermissionResolved = (toolUseId, decision, by) => {
        if (toolUseId !== q.toolUseId) return;
        process.stderr.write(`\n  (answered ${decision} by ${by})\n`);
        done(decision);
      };
      rl.question(`? ${sessionLabel(q)}: allow ${what}  [y]es / [n]o / [a]lways for ${q.kind === 'network' ? 'this host' : q.tool}: `, (answer) => {
        const a = answer.trim().toLowerCase();
        done(a === 'y' || a === 'yes' ? 'allow' : a === 'a' || a === 'always' ? 'allow_always' : 'deny');
      });
    });
  };
  return {
    answer: (q) => {
      if (q.sessionId !== driven()) return Promise.reject(notOurSession(q.sessionId, 'agentd run'));
      const answer = queue.then(() => ask(q));
      queue = answer.catch(() => undefined);
      return answer;
    },
    // The turn ended without an answer from here (the daemon went away, say): take the prompt down.
    close: () => open?.close(),
  };
}

const ANSWERS: Record<string, PermissionDecision> = { y: 'allow', yes: 'allow', n: 'deny', no: 'deny', a: 'allow_always', always: 'allow_always' };

/**
 * The open questions of the attached session, each shown once however often the daemon
 * asks it (it asks again on every reconnection), answered by the first y / n / a typed
 * after it was shown. An answer typed while the connection is down is kept and given
 * when the daemon asks again.
 */
export class AttachQuestions {
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
      this.view.note(`? ${sessionLabel(question)}: ${questionText(question)} ${question.kind === 'network' ? 'waits' : 'wants to run'}: allow? [y]es / [n]o / [a]lways`);
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
