import { resolve } from 'node:path';
import { DaemonStatus, SessionCreate, SessionGet, SessionId, SessionInterrupt, SessionPrompt } from '../../../protocol/index.js';
import { connect, type AgentdClient } from '../../lib/client.js';
import { SessionFollower, singleConnection } from '../../lib/follower.js';
import { TranscriptFold, type TranscriptChange, type TurnEnd } from '../../lib/transcript.js';
import { checked, type Command, UsageError } from '../context.js';
import { NETWORK_OPTIONS, NETWORK_USAGE, networkOption } from '../network.js';
import { terminalPermissions } from '../questions.js';
import { oneLine } from '../render.js';
import { TurnView } from '../turn-view.js';

/** How `run` ended: the turn's end, or run stopped waiting for it. */
export type RunOutcome = TurnEnd | { kind: 'interrupted'; note: string } | { kind: 'lost'; error: string };

/**
 * Prompts `sessionId` and follows the turn to its end: following from the log's head
 * as it was before the prompt, so nothing of the turn is missed; deltas and events of
 * this turn only. Ctrl-C asks the daemon to interrupt the turn; a second Ctrl-C gives
 * up waiting at once.
 */
export async function promptAndFollow(client: AgentdClient, sessionId: string, content: string, view: TurnView): Promise<RunOutcome> {
  let turnId: string | undefined;
  const early: TranscriptChange[] = [];
  let settle!: (outcome: RunOutcome) => void;
  const outcome = new Promise<RunOutcome>((r) => (settle = r));
  const fold = new TranscriptFold();
  const show = (change: TranscriptChange) => {
    // Changes that come before the prompt's answer names the turn wait for it.
    if (turnId === undefined) return void early.push(change);
    if (change.kind === 'unknown' || change.turn?.turnId !== turnId) return;
    const end = view.show(change);
    if (end) settle(end);
  };
  const { headSeq } = await client.request(SessionGet, { sessionId });
  const follower = new SessionFollower(singleConnection(client), sessionId, headSeq, {
    onEvents: (events) => fold.events(events).forEach(show),
    onDelta: (delta) => fold.delta(delta).forEach(show),
    onEnded: (error) => settle({ kind: 'lost', error: error.message }),
  });

  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts > 1) return settle({ kind: 'interrupted', note: 'stopped waiting; the daemon may still be ending the turn' });
    view.note('interrupting the turn… (Ctrl-C again to quit at once)');
    client.request(SessionInterrupt, { sessionId }).then(
      ({ interrupted }) => {
        if (!interrupted) settle({ kind: 'interrupted', note: 'no turn was running yet; a queued prompt may still run' });
      },
      (error: Error) => settle({ kind: 'lost', error: error.message }),
    );
  };
  process.on('SIGINT', onSigint);
  void client.closed.then(() => settle(lostConnection(client)));
  try {
    // Subscribed before prompting: the turn's streamed text reaches only subscribers.
    await follower.ready;
    turnId = (await client.request(SessionPrompt, { sessionId, content })).turnId;
    early.splice(0).forEach(show);
    return await outcome;
  } finally {
    process.off('SIGINT', onSigint);
    follower.dispose();
  }
}

/** The outcome when the connection closed under a turn: the daemon may have been stopped on purpose. */
function lostConnection(client: AgentdClient): RunOutcome {
  const notice = client.stoppingNotice;
  return notice
    ? { kind: 'lost', error: `the daemon was stopped on purpose (${notice.reason}); the turn is paused and carries on when it starts again (\`agentd start\`)` }
    : { kind: 'lost', error: 'the connection to the daemon closed' };
}

/** Exit code for an outcome, with its diagnostics on stderr. */
export function exitCodeFor(outcome: RunOutcome, who: string, sessionId: string): number {
  switch (outcome.kind) {
    case 'completed':
      return 0;
    case 'failed':
      process.stderr.write(`${who}: turn failed: ${outcome.error}\n`);
      return 1;
    case 'interrupted':
      process.stderr.write(`${who}: interrupted${'note' in outcome ? ` (${outcome.note})` : ''}\n`);
      return 130;
    case 'lost':
      process.stderr.write(`${who}: ${outcome.error}; the turn runs on in the daemon: agentd log ${sessionId} --follow\n`);
      return 1;
  }
}

const NO_KEY = [
  'agentd run: the daemon has no API key. Set one in either place the daemon looks:',
  '  export ANTHROPIC_API_KEY=sk-ant-...        (the daemon reads its environment when it starts:',
  '                                              `agentd stop` first if one is already running)',
  '  agentd vault set ANTHROPIC_API_KEY < key   (stored encrypted; no restart needed)',
  'To see agentd work without a key, run `agentd demo` (an offline scripted model).',
].join('\n');

/** Why a run cannot call the model, asked of the daemon (its environment and vault), not of this shell. */
async function missingApiKey(client: AgentdClient): Promise<string | undefined> {
  const { modelApiKey, pid } = await client.request(DaemonStatus, {});
  if (modelApiKey !== 'missing') return undefined;
  // The shell has a key the running daemon never saw: it started before the export.
  const shell = process.env.ANTHROPIC_API_KEY
    ? `\nThis shell has ANTHROPIC_API_KEY, but the running daemon (pid ${pid}) started without it: \`agentd stop\`, then run again.`
    : '';
  return `${NO_KEY}${shell}`;
}

export const run: Command = {
  usage: [
    'agentd run "<prompt>" [--workspace DIR] [--session ID] [--model M] [--yes] [network options]',
    '',
    'Prompts a new session (workspace DIR, default the current directory) or --session ID, and',
    'streams the turn: the answer on stdout; tool calls, results, questions and notes on stderr.',
    'Tool permissions of this session are asked here: y = allow, n = deny, a = always allow that tool.',
    'Without a terminal on stdin they are denied. --yes creates the session with every tool allowed',
    '(with --session, it allows that session\'s questions). Questions of other sessions never reach run:',
    'neither --yes nor a missing terminal decides anything for a session run does not drive.',
    'Ctrl-C interrupts the turn; a second Ctrl-C quits. Exit: 0 completed, 1 failed, 130 interrupted.',
    '',
    'The API key: the daemon uses ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) from its own environment,',
    'read when it started, else the vault entry ANTHROPIC_API_KEY. A daemon started before you exported',
    'the key does not see it: `agentd stop` and run again, or `agentd vault set ANTHROPIC_API_KEY`.',
    'No key at all? `agentd demo` shows the whole thing with an offline scripted model.',
    '',
    NETWORK_USAGE,
    'Network questions are asked here like tool permissions (a = always allow that host); --yes does not answer them.',
  ].join('\n'),
  summary: 'prompt a session and stream the turn in the terminal (tools, permissions inline, Ctrl-C interrupts)',
  options: { workspace: { type: 'string' }, session: { type: 'string' }, model: { type: 'string' }, yes: { type: 'boolean', short: 'y' }, ...NETWORK_OPTIONS },
  args: ['prompt...'],
  params: { sessionId: '--session', content: '"<prompt>"' },
  async run({ values, positionals }, ctx) {
    const text = positionals.join(' ').trim();
    if (!text) throw new UsageError('missing "<prompt>"');
    const existing = typeof values.session === 'string' ? checked(SessionId, values.session, '--session') : undefined;
    const network = networkOption(values);
    if (existing && (values.workspace !== undefined || values.model !== undefined || network)) {
      throw new UsageError('--workspace, --model and the network options apply to a new session; drop them with --session');
    }
    const yes = values.yes === true;
    const view = new TurnView({ text: process.stdout, info: process.stderr });
    let sessionId: string | undefined;
    const questions = terminalPermissions(view, yes, () => sessionId);
    const client = await connect({ clientName: 'agentd-run', clientVersion: ctx.version, explicit: true, onPermissionRequest: questions.answer });
    try {
      const noKey = await missingApiKey(client);
      if (noKey) {
        process.stderr.write(`${noKey}\n`);
        return 1;
      }
      if (existing) {
        sessionId = (await client.request(SessionGet, { sessionId: existing })).sessionId;
        process.stderr.write(`session ${sessionId}\n`);
      } else {
        const workspace = resolve(typeof values.workspace === 'string' ? values.workspace : process.cwd());
        sessionId = (
          await client.request(SessionCreate, {
            workspace,
            title: oneLine(text, 80),
            ...(typeof values.model === 'string' ? { model: values.model } : {}),
            ...(yes ? { permissions: { default: 'allow' as const } } : {}),
            ...(network ? { network } : {}),
          })
        ).sessionId;
        process.stderr.write(`session ${sessionId} in ${workspace} (continue with --session ${sessionId})\n`);
      }
      return exitCodeFor(await promptAndFollow(client, sessionId, text, view), 'agentd run', sessionId);
    } finally {
      questions.close();
      client.close();
    }
  },
};
