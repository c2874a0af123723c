import { createInterface } from 'node:readline';
import { SessionDelete, SessionEvents, SessionGet, SessionRename, SessionRollback, SessionSetBudget, SessionSteer, type Budget, type Event, type UsageTotals } from '../../../protocol/index.js';
import { budgetOptions, type Command, intOption, sessionIdArg, textArg, UsageError } from '../context.js';
import { renderUsage } from '../render.js';

/** Commands that change a session after the fact: rename, delete, rollback, steer, and its usage. */

export const rename: Command = {
  usage: 'agentd rename <sessionId> <title...>',
  summary: 'give a session a new title',
  options: {},
  args: ['sessionId', 'title...'],
  params: { title: '<title>' },
  async run({ positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const title = textArg(positionals, 1, 'title');
    const client = await ctx.connect();
    await client.request(SessionRename, { sessionId, title });
    ctx.out(`renamed ${sessionId}: ${title}`);
    return 0;
  },
};

export const budget: Command = {
  usage: 'agentd budget <sessionId> (--max-tokens N | --max-cost USD | --none)',
  summary: 'raise, lower or remove the budget of a session and its sub-agents; a turn stopped by it goes on when prompted again',
  options: { 'max-tokens': { type: 'string' }, 'max-cost': { type: 'string' }, none: { type: 'boolean' } },
  args: ['sessionId'],
  params: { 'budget.maxTokens': '--max-tokens', 'budget.maxCost': '--max-cost' },
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const budget = budgetOptions(values);
    const given = Object.keys(budget).length > 0;
    if (given === Boolean(values.none)) throw new UsageError('give --max-tokens and/or --max-cost, or --none to remove the budget');
    const client = await ctx.connect();
    await client.request(SessionSetBudget, { sessionId, budget });
    ctx.out(given ? `budget of ${sessionId}: ${renderBudget(budget)}` : `${sessionId} has no budget now`);
    return 0;
  },
};

function renderBudget(budget: Budget): string {
  return [budget.maxTokens !== undefined ? `${budget.maxTokens} tokens` : '', budget.maxCost !== undefined ? `$${budget.maxCost}` : ''].filter(Boolean).join(', ');
}

/** One line of the person's answer on stdin (a terminal or a pipe); empty when stdin ends first. */
function answerLine(question: string): Promise<string> {
  process.stderr.write(question);
  const lines = createInterface({ input: process.stdin });
  return new Promise((resolve) => {
    let answered = false;
    lines.once('line', (line) => ((answered = true), lines.close(), resolve(line)));
    lines.once('close', () => answered || resolve(''));
  });
}

export const remove: Command = {
  usage: 'agentd delete <sessionId> [--yes]',
  summary: 'delete a session for good: its log, and its workspace copy if it is a fork (asks first unless --yes)',
  options: { yes: { type: 'boolean' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const client = await ctx.connect();
    if (!values.yes) {
      const info = await client.request(SessionGet, { sessionId });
      const name = info.title ? `"${info.title}" (${sessionId})` : sessionId;
      const answer = await answerLine(`delete session ${name} with its ${info.headSeq} events for good? [y/N] `);
      if (!/^y(es)?$/i.test(answer.trim())) {
        process.stderr.write('not deleted\n');
        return 1;
      }
    }
    const { deleted } = await client.request(SessionDelete, { sessionId });
    ctx.out(`deleted ${deleted.join(', ')}`);
    return 0;
  },
};

export const rollback: Command = {
  usage: 'agentd rollback <sessionId> [--turns N] [--json]',
  summary: "take the last N turns (default 1) out of the model's context; the log keeps them, files stay as they are",
  options: { turns: { type: 'string' }, json: { type: 'boolean' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const turns = intOption(values, 'turns', 1) ?? 1;
    const client = await ctx.connect();
    const result = await client.request(SessionRollback, { sessionId, turns });
    ctx.print(values, result, (r) => `rolled back ${r.turnIds.length} turn${r.turnIds.length === 1 ? '' : 's'} at seq ${r.seq}: ${r.turnIds.join(', ')}`);
    return 0;
  },
};

export const steer: Command = {
  usage: 'agentd steer <sessionId> <text...> [--json]',
  summary: "add input to the turn running now (its next model call reads it); with none running, a prompt",
  options: { json: { type: 'boolean' } },
  args: ['sessionId', 'text...'],
  params: { content: '<text>' },
  async run({ values, positionals }, ctx) {
    const client = await ctx.connect();
    const result = await client.request(SessionSteer, { sessionId: sessionIdArg(positionals, 0), content: textArg(positionals, 1, 'text') });
    ctx.print(values, result, (r) => r.steered ? `steered turn ${r.turnId} (seq ${r.seq})` : `no turn was running: queued as turn ${r.turnId} (seq ${r.seq})`);
    return 0;
  },
};

const TURN_ENDS = ['turn.completed', 'turn.interrupted', 'turn.failed'];

export const usage: Command = {
  usage: 'agentd usage <sessionId> [--json]',
  summary: 'tokens and cost of a session, turn by turn, and its budget',
  options: { json: { type: 'boolean' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const client = await ctx.connect();
    const info = await client.request(SessionGet, { sessionId });
    const turns: Array<{ turnId: string; end: string; usage?: UsageTotals }> = [];
    for (let from: number | undefined = 0; from !== undefined; ) {
      const page: { events: Event[]; next?: number } = await client.request(SessionEvents, { sessionId, from, types: TURN_ENDS });
      for (const e of page.events) turns.push({ turnId: String(e.data.turnId), end: e.type.slice('turn.'.length), ...(e.data.usage ? { usage: e.data.usage as UsageTotals } : {}) });
      from = page.next;
    }
    if (values.json) {
      ctx.json({ sessionId, usage: info.usage, ...(info.budget ? { budget: info.budget } : {}), turns });
      return 0;
    }
    for (const t of turns) ctx.out(`${t.turnId}  ${t.end.padEnd(11)}  ${t.usage ? renderUsage(t.usage) : '(not counted)'}`);
    ctx.out(`session      ${renderUsage(info.usage)}`);
    if (info.budget) ctx.out(`budget       ${renderBudget(info.budget)}`);
    return 0;
  },
};
