/**
 * The `agent` tool: the model starts a sub-agent, a session of its own (its own log,
 * context and model loop) that works in the same workspace and the same running sandbox,
 * with the parent's tools or fewer. The call's result is the sub-agent's final answer.
 */
import { z } from 'zod';
import { knownEvent, type NewKnownEvent, type UsageTotals } from '../../protocol/index.js';
import type { SessionLog } from '../log/session-log.js';
import type { ApiTool } from './context.js';

export const AGENT_TOOL_NAME = 'agent';

export const AgentToolInput = z.object({
  prompt: z.string().min(1),
  title: z.string().min(1).max(200).optional(),
  tools: z.array(z.string().min(1)).max(256).optional(),
});
export type AgentToolInput = z.infer<typeof AgentToolInput>;

export const AGENT_TOOL: ApiTool = {
  name: AGENT_TOOL_NAME,
  description:
    'Starts a sub-agent: another agent with its own context that works in this same workspace and sandbox (what it writes, you see) ' +
    'and answers with a final report, which is this call\'s result. Give it a self-contained task. Several agent calls in one reply run ' +
    'in parallel. `tools` limits the tools it may use (default: yours, except agent).',
  input_schema: {
    type: 'object',
    properties: {
      prompt: { type: 'string', description: 'The task, with everything the sub-agent needs to know.' },
      title: { type: 'string', description: 'A short title for the sub-agent session.' },
      tools: { type: 'array', items: { type: 'string' }, description: 'Tool names the sub-agent may use: a subset of yours.' },
    },
    required: ['prompt'],
  },
};

/** What the daemon needs to start (or find again) a sub-agent session. */
export interface ChildSpec {
  parentSessionId: string;
  toolUseId: string;
  childSessionId: string;
  prompt: string;
  title?: string;
  /** The tools it may use: those asked for that the parent has, never `agent`. */
  tools: string[];
}

/** The sub-agent's one turn, named after the call that started it: the parent can interrupt it before it starts. */
export function childTurnId(toolUseId: string): string {
  return `t_agent_${toolUseId}`;
}

/** How a sub-agent's turn ended, as the parent's tool call reports it. */
export interface ChildOutcome {
  text: string;
  isError: boolean;
  /** What the sub-agent's turn used, as its end event says. */
  usage?: UsageTotals;
}

/** The tools a sub-agent gets: those asked for (default: all) that the parent has, never `agent` (one level). */
function childTools(parentTools: readonly ApiTool[], asked: readonly string[] | undefined): string[] {
  const names = parentTools.map((t) => t.name).filter((name) => name !== AGENT_TOOL_NAME);
  return asked ? names.filter((name) => asked.includes(name)) : names;
}

/** The sub-agent a started `agent` call runs, or why it cannot run (the call's error result). */
export function childSpec(
  parentSessionId: string,
  call: { toolUseId: string; input: Record<string, unknown>; childSessionId?: string },
  parentTools: readonly ApiTool[],
): ChildSpec | string {
  const input = AgentToolInput.safeParse(call.input);
  if (!input.success) return `invalid agent input: ${input.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
  if (!call.childSessionId) return 'the sub-agent was never named (started by an older daemon)';
  return {
    parentSessionId,
    toolUseId: call.toolUseId,
    childSessionId: call.childSessionId,
    prompt: input.data.prompt,
    ...(input.data.title !== undefined ? { title: input.data.title } : {}),
    tools: childTools(parentTools, input.data.tools),
  };
}

/** The `agent` call's result: the sub-agent's answer, and what it used. */
export function childResult(turnId: string, toolUseId: string, outcome: ChildOutcome, durationMs: number): NewKnownEvent {
  return {
    type: 'tool.result',
    data: {
      turnId,
      toolUseId,
      content: [{ type: 'text', text: outcome.text }],
      isError: outcome.isError,
      ...(outcome.isError ? { errorKind: 'tool_error' as const } : {}),
      durationMs,
      ...(outcome.usage ? { usage: outcome.usage } : {}),
    },
  };
}

const used = (usage: UsageTotals | undefined) => (usage ? { usage } : {});

/**
 * Resolves with how the sub-agent's first turn ended, read from its log (at once when it
 * already ended); rejects when `signal` aborts or the log cannot be followed.
 */
export async function firstTurnEnd(log: SessionLog, sessionId: string, signal: AbortSignal): Promise<ChildOutcome> {
  let answer = '';
  let settle!: { resolve: (o: ChildOutcome) => void; reject: (e: unknown) => void };
  const ended = new Promise<ChildOutcome>((resolve, reject) => (settle = { resolve, reject }));
  const subscription = await log.subscribe(sessionId, 0, (events) => {
    for (const stored of events) {
      const event = knownEvent(stored);
      if (event?.type === 'assistant.message') answer = event.data.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n').trim();
      else if (event?.type === 'turn.completed') settle.resolve({ text: answer || '(the sub-agent gave no answer)', isError: false, ...used(event.data.usage) });
      else if (event?.type === 'turn.failed') settle.resolve({ text: `the sub-agent failed: ${event.data.error}`, isError: true, ...used(event.data.usage) });
      else if (event?.type === 'turn.interrupted') settle.resolve({ text: 'the sub-agent was interrupted', isError: true, ...used(event.data.usage) });
    }
  });
  void subscription.ended.then((end) => settle.reject(end.reason === 'error' ? end.error : new Error(`following the sub-agent ended (${end.reason})`)));
  const abort = () => settle.reject(signal.reason);
  if (signal.aborted) abort();
  signal.addEventListener('abort', abort, { once: true });
  try {
    return await ended;
  } finally {
    signal.removeEventListener('abort', abort);
    subscription.close();
  }
}
