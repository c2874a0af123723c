import { resolve } from 'node:path';
import { SessionArchive, SessionCreate, SessionFork, SessionList, SessionPrompt, SessionStatus } from '../../../protocol/index.js';
import { budgetOptions, type Command, intOption, sessionIdArg, textArg, UsageError } from '../context.js';
import { NETWORK_OPTIONS, NETWORK_USAGE, networkOption } from '../network.js';
import { renderSessions } from '../render.js';

export const sessions: Command = {
  usage: 'agentd sessions [--status S] [--workspace DIR] [--limit N] [--json]',
  summary: 'list sessions, newest first',
  options: { status: { type: 'string' }, workspace: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  args: [],
  async run({ values }, ctx) {
    const status = values.status === undefined ? undefined : SessionStatus.safeParse(values.status);
    if (status && !status.success) throw new UsageError(`--status must be one of ${SessionStatus.options.join(', ')}`);
    const client = await ctx.connect();
    const page = await client.request(SessionList, {
      ...(status?.success ? { status: status.data } : {}),
      ...(typeof values.workspace === 'string' ? { workspace: resolve(values.workspace) } : {}),
      limit: intOption(values, 'limit', 1) ?? 50,
    });
    ctx.print(values, page, (r) => renderSessions(r.sessions));
    return 0;
  },
};

export const create: Command = {
  usage: ['agentd new [--workspace DIR] [--title TEXT] [--model NAME] [--max-tokens N] [--max-cost USD] [network options] [--json]', '', NETWORK_USAGE].join('\n'),
  summary: 'create a session (workspace defaults to the current directory); prints its id. --max-tokens/--max-cost: a budget its turns stop at',
  options: {
    workspace: { type: 'string' },
    title: { type: 'string' },
    model: { type: 'string' },
    'max-tokens': { type: 'string' },
    'max-cost': { type: 'string' },
    json: { type: 'boolean' },
    ...NETWORK_OPTIONS,
  },
  args: [],
  params: { 'budget.maxTokens': '--max-tokens', 'budget.maxCost': '--max-cost' },
  async run({ values }, ctx) {
    const budget = budgetOptions(values);
    const network = networkOption(values);
    const client = await ctx.connect();
    const result = await client.request(SessionCreate, {
      workspace: resolve(typeof values.workspace === 'string' ? values.workspace : process.cwd()),
      ...(network ? { network } : {}),
      ...(typeof values.title === 'string' ? { title: values.title } : {}),
      ...(typeof values.model === 'string' ? { model: values.model } : {}),
      ...(Object.keys(budget).length > 0 ? { budget } : {}),
    });
    ctx.print(values, result, (r) => r.sessionId);
    return 0;
  },
};

export const prompt: Command = {
  usage: 'agentd prompt <sessionId> <text...> [--json]',
  summary: 'append a user message to a session (durable when this returns)',
  options: { json: { type: 'boolean' } },
  args: ['sessionId', 'text...'],
  params: { content: '<text>' },
  async run({ values, positionals }, ctx) {
    const client = await ctx.connect();
    const result = await client.request(SessionPrompt, { sessionId: sessionIdArg(positionals, 0), content: textArg(positionals, 1, 'text') });
    ctx.print(values, result, (r) => `user message at seq ${r.seq} (turn ${r.turnId})`);
    return 0;
  },
};

export const archive: Command = {
  usage: 'agentd archive <sessionId>',
  summary: 'make a session read-only',
  options: {},
  args: ['sessionId'],
  async run({ positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const client = await ctx.connect();
    await client.request(SessionArchive, { sessionId });
    ctx.out(`archived ${sessionId}: its log stays readable; it takes no more prompts`);
    return 0;
  },
};

export const fork: Command = {
  usage: 'agentd fork <sessionId> --at SEQ [--json]',
  summary: 'new session from events [0, SEQ) of another, with a copy of its workspace as it is now',
  options: { at: { type: 'string' }, json: { type: 'boolean' } },
  args: ['sessionId'],
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    // A fork keeps events [0, SEQ): at least session.created.
    const at = intOption(values, 'at', 1);
    if (at === undefined) throw new UsageError('missing --at SEQ');
    const client = await ctx.connect();
    const result = await client.request(SessionFork, { sessionId, at });
    ctx.print(values, result, (r) => r.sessionId);
    return 0;
  },
};
