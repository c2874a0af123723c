import { isAbsolute, resolve } from 'node:path';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  AgentdError,
  ErrorCode,
  SessionCreate,
  SessionEvents,
  SessionInterrupt,
  SessionList,
  SessionSteer,
  SessionStatus,
  type SessionInfo,
} from '../../protocol/index.js';
import { DialError, type DaemonLink } from '../lib/index.js';

export const sessionIdArg = z.string().describe('The session id, as returned by agentd_create_session or agentd_list_sessions (looks like s_…).');

/** Error text a model can act on: what went wrong, in agentd's words, with a hint where one helps. */
export function explainError(error: unknown): string {
  if (error instanceof AgentdError) {
    if (error.code === ErrorCode.SessionNotFound) return `${error.message}. Use agentd_list_sessions to see the sessions that exist.`;
    if (error.code === ErrorCode.InvalidParams) return `invalid arguments: ${error.message}`;
    return `${error.message} (${AgentdError.codeName(error.code)})`;
  }
  if (error instanceof DialError) return `cannot reach the agentd daemon: ${error.message}`;
  return (error as Error)?.message ?? String(error);
}

function failure(error: unknown): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: explainError(error) }] };
}

export function json(value: Record<string, unknown>, text = JSON.stringify(value, null, 2)): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: value };
}

/** Runs a tool body; any failure comes back as an `isError` result, never as a protocol error. */
export async function guarded(body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body();
  } catch (error) {
    return failure(error);
  }
}

function sessionLine(s: SessionInfo): Record<string, unknown> {
  return {
    sessionId: s.sessionId,
    ...(s.title !== undefined ? { title: s.title } : {}),
    status: s.status,
    workspace: s.workspace,
    ...(s.model !== undefined ? { model: s.model } : {}),
    events: s.headSeq,
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}

const EventOut = z.object({ seq: z.number(), ts: z.number(), type: z.string(), data: z.record(z.string(), z.unknown()) });

export function registerTools(mcp: McpServer, link: DaemonLink): void {
  mcp.registerTool(
    'agentd_create_session',
    {
      title: 'Create an agentd session',
      description:
        'Creates a new agent session in the agentd daemon. The session runs a tool-using agent (shell, file and search tools) ' +
        'in an isolated sandbox over `workspace`. Returns the session id to pass to agentd_prompt. ' +
        'Tool calls that need permission are put to the user of this MCP host (elicitation) when it supports that, ' +
        'else they wait for another client attached to the session (e.g. `agentd attach`); `permissions` can allow them upfront.',
      inputSchema: {
        workspace: z
          .string()
          .optional()
          .describe('Directory the agent works in (absolute, or relative to where agentd mcp runs). Default: that directory.'),
        title: z.string().max(200).optional().describe('A short title to recognise the session by.'),
        model: z.string().optional().describe('Model id for this session; default: the daemon’s.'),
        system: z.string().optional().describe('Extra system prompt for the agent.'),
        permissions: z
          .object({
            default: z.enum(['ask', 'allow', 'deny']).describe('What to do with a tool call no rule matches.'),
            allow: z.array(z.string()).optional().describe('Tool name patterns always allowed, e.g. "read_file" or "bash".'),
            deny: z.array(z.string()).optional().describe('Tool name patterns always denied.'),
          })
          .optional()
          .describe('Tool permission policy. Default: ask (someone attached to the session answers each call).'),
      },
      outputSchema: { sessionId: z.string(), workspace: z.string() },
    },
    (args) =>
      guarded(async () => {
        const workspace = args.workspace === undefined ? process.cwd() : isAbsolute(args.workspace) ? args.workspace : resolve(args.workspace);
        // Hosts such as Claude Desktop start servers in /: never hand the whole file system to an agent by default.
        if (args.workspace === undefined && workspace === '/') return failure(new Error('give `workspace`: an absolute path to the directory the agent should work in'));
        const { sessionId: id } = await link.request(SessionCreate, {
          workspace,
          ...(args.title !== undefined ? { title: args.title } : {}),
          ...(args.model !== undefined ? { model: args.model } : {}),
          ...(args.system !== undefined ? { system: args.system } : {}),
          ...(args.permissions !== undefined ? { permissions: args.permissions } : {}),
        });
        return json({ sessionId: id, workspace }, `Created session ${id} (workspace ${workspace}).`);
      }),
  );

  mcp.registerTool(
    'agentd_read_events',
    {
      title: 'Read a session’s events',
      description:
        'Reads a slice of a session’s event log by position (seq, dense from 0): user.message, turn.started, assistant.message, ' +
        'tool.started, tool.result, turn.completed and so on. Returns the events, `headSeq` (the seq the next event will get) ' +
        'and `next` (where to continue when the page was cut short).',
      inputSchema: {
        sessionId: sessionIdArg,
        from: z.number().int().min(0).optional().describe('First seq to read (default 0).'),
        limit: z.number().int().min(1).max(1000).optional().describe('At most this many events (default 100).'),
        types: z.array(z.string().min(1)).min(1).optional().describe('Only events of these types, e.g. ["assistant.message", "tool.result"].'),
      },
      outputSchema: { sessionId: z.string(), headSeq: z.number(), next: z.number().optional(), events: z.array(EventOut) },
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const page = await link.request(SessionEvents, {
          sessionId: args.sessionId,
          from: args.from ?? 0,
          limit: args.limit ?? 100,
          ...(args.types ? { types: args.types } : {}),
        });
        return json({ sessionId: args.sessionId, headSeq: page.headSeq, ...(page.next !== undefined ? { next: page.next } : {}), events: page.events });
      }),
  );

  mcp.registerTool(
    'agentd_list_sessions',
    {
      title: 'List agentd sessions',
      description: 'Lists sessions, newest first: id, title, status (idle, queued, running, waiting, archived), workspace, event count.',
      inputSchema: {
        status: SessionStatus.optional().describe('Only sessions with this status.'),
        limit: z.number().int().min(1).max(200).optional().describe('At most this many (default 50).'),
      },
      outputSchema: { sessions: z.array(z.record(z.string(), z.unknown())) },
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const { sessions } = await link.request(SessionList, { limit: args.limit ?? 50, ...(args.status ? { status: args.status } : {}) });
        return json({ sessions: sessions.map(sessionLine) });
      }),
  );

  mcp.registerTool(
    'agentd_interrupt',
    {
      title: 'Interrupt a session’s turn',
      description: 'Stops the turn the session is running, if any. A pending agentd_prompt call then returns with outcome "interrupted".',
      inputSchema: { sessionId: sessionIdArg },
      outputSchema: { sessionId: z.string(), interrupted: z.boolean() },
    },
    (args) =>
      guarded(async () => {
        const { interrupted } = await link.request(SessionInterrupt, { sessionId: args.sessionId });
        return json(
          { sessionId: args.sessionId, interrupted },
          interrupted ? `Interrupted the running turn of ${args.sessionId}.` : `No turn was running in ${args.sessionId}; nothing to interrupt.`,
        );
      }),
  );

  mcp.registerTool(
    'agentd_steer',
    {
      title: 'Steer a session’s running turn',
      description:
        'Adds input to the turn the session is running now: the agent reads it at its next model call, without waiting for the turn ' +
        'to end (a pending agentd_prompt call then returns that turn’s answer). With no turn running it starts a turn of its own, ' +
        'as agentd_prompt would, without waiting for it.',
      inputSchema: { sessionId: sessionIdArg, text: z.string().min(1).describe('What to tell the agent now.') },
      outputSchema: { sessionId: z.string(), turnId: z.string(), steered: z.boolean() },
    },
    (args) =>
      guarded(async () => {
        const { turnId, steered } = await link.request(SessionSteer, { sessionId: args.sessionId, content: args.text });
        return json(
          { sessionId: args.sessionId, turnId, steered },
          steered ? `Added to the running turn ${turnId}.` : `No turn was running: started turn ${turnId}.`,
        );
      }),
  );
}
