import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { PermissionAnswer, PermissionDecision, SessionPrompt } from '../../protocol/index.js';
import type { DaemonLink } from '../lib/index.js';
import type { PermissionAsker } from './permissions.js';
import type { TurnTaskContext } from './task-store.js';
import { POLL_INTERVAL_MS, TurnTask } from './turn-task.js';
import { explainError, guarded, json, sessionIdArg } from './tools.js';

const ToolCallOut = z.object({ name: z.string(), toolUseId: z.string(), ok: z.boolean(), errorKind: z.string().optional() });

const PROMPT_DESCRIPTION =
  'Sends a prompt to a session and waits until the agent’s turn ends. Returns the final answer text, a summary of the ' +
  'tool calls it made (name, ok or error) and how the turn ended (stop reason, interruption or failure). ' +
  'Supports MCP tasks: called as a task it returns at once and the turn is read with tasks/get and tasks/result. ' +
  'Otherwise it sends a progress notification at least every 10 s while the turn runs, when the request carries a progress token. ' +
  'The turn lives in the daemon: if this call times out or is cancelled the turn keeps running; read what it did with ' +
  'agentd_read_events (from the session’s events, types ["assistant.message", "turn.completed", "turn.failed", "turn.interrupted"]) ' +
  'and stop it with agentd_interrupt. When a tool call needs permission and this host cannot ask its user, the call returns ' +
  'at once naming the question; answer it with agentd_answer_permission.';

export interface PromptToolDeps {
  link: DaemonLink;
  asker: PermissionAsker;
  /** Whether a `tools/call` request asked for a task (the SDK does not tell a tool). */
  asksForTask: (requestId: RequestId) => boolean;
  /** Whether the host can ask its user (declared elicitation). */
  hostCanElicit: () => boolean;
}

/**
 * `agentd_prompt` as a task tool (MCP 2025-11-25 tasks, the SDK's experimental API):
 * the task is made once the prompt is in the daemon's log, so its id stays good after
 * any crash. A call without a task is run by the SDK as a task it polls itself; such a
 * call gets progress, and returns early at a question nobody here can answer.
 */
export function registerPromptTools(mcp: McpServer, deps: PromptToolDeps): void {
  const { link, asker } = deps;
  mcp.experimental.tasks.registerToolTask(
    'agentd_prompt',
    {
      title: 'Prompt an agentd session',
      description: PROMPT_DESCRIPTION,
      inputSchema: { sessionId: sessionIdArg, prompt: z.string().min(1).describe('What to ask the agent.') },
      outputSchema: {
        sessionId: z.string(),
        turnId: z.string(),
        outcome: z.enum(['completed', 'interrupted', 'failed']).optional(),
        stopReason: z.string().nullable().optional(),
        error: z.string().optional(),
        answer: z.string().optional(),
        toolCalls: z.array(ToolCallOut).optional(),
        firstSeq: z.number(),
        lastSeq: z.number().optional(),
        warnings: z.array(z.string()).optional(),
        waitingFor: z.object({ toolUseId: z.string(), tool: z.string(), input: z.record(z.string(), z.unknown()) }).optional(),
      },
      execution: { taskSupport: 'optional' },
    },
    {
      createTask: async (args, extra) => {
        let ids;
        try {
          // Prompting makes this server a controller of the session: its questions come here.
          const { turnId, seq } = await link.request(SessionPrompt, { sessionId: args.sessionId, content: args.prompt });
          ids = { sessionId: args.sessionId, turnId, seq };
        } catch (error) {
          throw new Error(explainError(error));
        }
        const asTask = deps.asksForTask(extra.requestId);
        const turn = new TurnTask(link, ids, {
          stopAtQuestion: !asTask && !deps.hostCanElicit(),
          onStep: ({ changes }) => {
            for (const change of changes) if (change.kind === 'tool' && change.what === 'answered') asker.settled(change.call.toolUseId);
          },
        });
        void turn.ended.then(() => asker.turnEnded(args.sessionId));
        const progressToken = extra._meta?.progressToken;
        if (progressToken !== undefined) {
          turn.reportTo((progress, message) => extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, message } }));
        }
        const context: TurnTaskContext = { turn, hidden: !asTask };
        const task = await extra.taskStore.createTask({ pollInterval: POLL_INTERVAL_MS, context: { ...context } });
        return { task };
      },
      getTask: (_args, extra) => extra.taskStore.getTask(extra.taskId),
      getTaskResult: async (_args, extra) => (await extra.taskStore.getTaskResult(extra.taskId)) as CallToolResult,
    },
  );

  mcp.registerTool(
    'agentd_answer_permission',
    {
      title: 'Answer a session’s permission question',
      description:
        'Answers an open permission question of a session (a tool call waiting for allow or deny), as named by agentd_prompt ' +
        'or a task’s input_required status: allow (this call), allow_always (every call of that tool in the session) or deny.',
      inputSchema: {
        sessionId: sessionIdArg,
        toolUseId: z.string().min(1).describe('The waiting tool call’s id, as the question named it.'),
        decision: PermissionDecision.describe('allow, allow_always or deny'),
      },
      outputSchema: { sessionId: z.string(), toolUseId: z.string(), decision: z.string() },
    },
    (args) =>
      guarded(async () => {
        // Only a controller may answer: attaching as one is what `agentd attach` does too.
        await link.attach(args.sessionId, 'controller');
        await link.request(PermissionAnswer, { sessionId: args.sessionId, toolUseId: args.toolUseId, decision: args.decision });
        return json({ ...args }, `Answered ${args.toolUseId} in ${args.sessionId}: ${args.decision}. The turn runs on.`);
      }),
  );
}
