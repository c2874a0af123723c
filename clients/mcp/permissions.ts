import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { PermissionDecision } from '../../protocol/index.js';
import type { PermissionQuestion as Question } from '../lib/index.js';

/** The part of a tool's input a person recognises the call by. */
function callLine(tool: string, input: Record<string, unknown>): string {
  for (const key of ['command', 'path', 'pattern']) if (typeof input[key] === 'string') return `${tool}: ${String(input[key])}`;
  const json = JSON.stringify(input);
  return `${tool} ${json.length > 300 ? `${json.slice(0, 299)}…` : json}`;
}

/** Which session asks, for the person: its title when it has one, and its id. */
function sessionLine(q: Question): string {
  return q.sessionTitle ? `"${q.sessionTitle}" (${q.sessionId})` : q.sessionId;
}

/**
 * Answers the daemon's permission questions by asking the MCP host's user through
 * elicitation. The link hands it only the questions of sessions this server drives
 * (created or prompted through it) and refuses the others (NotController). One the host
 * cannot elicit is left to the session's other controllers (the CLI, an editor): the
 * daemon asks every controller and takes the first answer.
 */
export class PermissionAsker {
  /** Open elicitations by tool use id, withdrawn when the question is settled elsewhere. */
  private readonly open = new Map<string, { sessionId: string; abort: AbortController }>();

  /** `taskOf`: the MCP task running the session's turn, if any: its questions go by that task's side channel. */
  constructor(
    private readonly server: Server,
    private readonly taskOf: (sessionId: string) => string | undefined,
  ) {}

  /** The question was answered (by anyone): close its elicitation if still open. */
  settled(toolUseId: string): void {
    this.open.get(toolUseId)?.abort.abort();
  }

  /** The session's turn ended: nothing of it is still to be answered. */
  turnEnded(sessionId: string): void {
    for (const entry of this.open.values()) if (entry.sessionId === sessionId) entry.abort.abort();
  }

  /** `withdrawn` aborts when the daemon withdraws the question (answered elsewhere). */
  async answer(question: Question, withdrawn: AbortSignal): Promise<{ decision: PermissionDecision }> {
    if (this.server.getClientCapabilities()?.elicitation === undefined) throw new Error('this MCP host cannot answer permission questions (it offers no elicitation)');
    const abort = new AbortController();
    this.open.set(question.toolUseId, { sessionId: question.sessionId, abort });
    try {
      return await this.elicit(question, AbortSignal.any([abort.signal, withdrawn]));
    } finally {
      this.open.delete(question.toolUseId);
    }
  }

  private async elicit(question: Question, signal: AbortSignal): Promise<{ decision: PermissionDecision }> {
    const taskId = this.taskOf(question.sessionId);
    // `server.request` rather than `elicitInput`: hosts that declare `elicitation: {}`
    // (form mode, by the spec's default) are refused by the latter.
    const result = await this.server.request(
      {
        method: 'elicitation/create',
        params: {
          message: `agentd session ${sessionLine(question)} wants to run ${callLine(question.tool, question.input)}`,
          requestedSchema: {
            type: 'object',
            properties: {
              decision: {
                type: 'string',
                title: 'Allow this tool call?',
                // A plain enum: every elicitation-capable host renders it (titled options came later).
                description: `allow: this call only; allow_always: every ${question.tool} call in this session; deny: refuse it`,
                enum: ['allow', 'allow_always', 'deny'],
              },
            },
            required: ['decision'],
          },
        },
      },
      ElicitResultSchema,
      // The user may take their time; the question stays open in the daemon meanwhile. Under a
      // task the question is queued for the host's tasks/result (the task is input_required).
      { timeout: 24 * 60 * 60 * 1000, signal, ...(taskId ? { relatedTask: { taskId } } : {}) },
    );
    if (result.action === 'decline') return { decision: 'deny' };
    const decision = result.content?.decision;
    if (result.action === 'accept' && (decision === 'allow' || decision === 'allow_always' || decision === 'deny')) return { decision };
    // Dismissed: no answer from here; another controller may still give one.
    throw new Error('the MCP host dismissed the permission question');
  }
}
