import { z } from 'zod';
import { clientRequest } from '../define.js';
import { PromptInput } from '../content.js';
import { Budget, UsageTotals } from '../usage.js';
import { FieldLimits as L } from '../limits.js';
import { hostPatterns, NetworkPolicy, NetworkPolicyShown } from '../network.js';

export const SessionId = z.string().regex(/^s_[0-9a-z]{10,40}$/, 'a session id looks like s_<letters and digits>');

export const SessionStatus = z.enum([
  /** No turn pending. */
  'idle',
  /** A user message is durable and its turn has not started yet. */
  'queued',
  /** A turn is running. */
  'running',
  /** A turn waits for a permission answer. */
  'waiting',
  /** Read-only from now on. */
  'archived',
]);
export type SessionStatus = z.infer<typeof SessionStatus>;

const name = z.string().max(L.nameChars);
const list = z.array(z.string().max(L.nameChars)).max(L.listItems);
const path = z.string().max(L.pathChars);

const McpStdioServer = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/),
  command: z.string().min(1).max(L.pathChars),
  args: z.array(z.string().max(L.mcpValueChars)).max(L.mcpArgs).optional(),
  env: z
    .record(z.string().max(L.nameChars), z.string().max(L.mcpValueChars))
    .refine((env) => Object.keys(env).length <= L.mcpEnvEntries, `at most ${L.mcpEnvEntries} environment entries`)
    .optional(),
});
const McpHttpServer = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/),
  type: z.literal('http'),
  url: z.url().max(L.urlChars),
  credential: name.optional(),
});
export const McpServerSpec = z.union([McpHttpServer, McpStdioServer]);

export const PermissionPolicy = z.object({
  default: z.enum(['ask', 'allow', 'deny']),
  allow: list.optional(),
  deny: list.optional(),
});
export type PermissionPolicy = z.infer<typeof PermissionPolicy>;


export const SessionCreateParams = z.object({
  workspace: path.startsWith('/', 'workspace must be an absolute path'),
  title: z.string().max(L.titleChars).optional(),
  model: z.string().min(1).max(L.modelChars).optional(),
  system: z.string().max(L.systemChars).optional(),
  tools: list.optional(),
  mcpServers: z.array(McpServerSpec).max(L.mcpServers).optional(),
  credentials: list.optional(),
  repos: z.array(z.object({ url: z.string().max(L.urlChars), credential: name, path })).max(L.listItems).optional(),
  sandbox: z
    .object({
      /** Never below the daemon's floor: a weaker request is refused with IsolationBelowFloor. */
      isolation: z.enum(['bwrap', 'namespaces', 'none']).optional(),
      eager: z.boolean().optional(),
      /** At most the daemon's maximum (its default); more is refused with LimitExceeded. */
      limits: z
        .object({
          /** Processes and threads in the whole sandbox. */
          pids: z.number().int().min(32).optional(),
          /** Memory of the whole sandbox in MiB (with cgroups; per process with rlimits). */
          memoryMb: z.number().int().min(64).optional(),
        })
        .optional(),
    })
    .optional(),
  permissions: PermissionPolicy.optional(),
  /** Egress through the proxy; without it: deny, plus the presets the daemon's configuration enables. */
  network: NetworkPolicy.optional(),
  /** Older turns are compacted when the context would pass this many (estimated) tokens. */
  context: z.object({ budgetTokens: z.number().int().min(1000) }).optional(),
  /** A spending limit for the session (see Budget). */
  budget: Budget.optional(),
});
export type SessionCreateParams = z.infer<typeof SessionCreateParams>;

export const SessionInfo = z.object({
  sessionId: SessionId,
  title: z.string().optional(),
  workspace: z.string(),
  model: z.string().optional(),
  status: SessionStatus,
  /** The seq the next event will get: the session has events [0, headSeq). */
  headSeq: z.number().int().nonnegative(),
  createdAt: z.number(),
  updatedAt: z.number(),
  /** Tokens (and their cost, when the model has a price) of the session's model calls. */
  usage: UsageTotals,
  budget: Budget.optional(),
  forkedFrom: z.object({ sessionId: SessionId, at: z.number().int() }).optional(),
  /** With a shared log: the daemon (its daemonId) whose harness holds the session now. */
  runningOn: z.string().optional(),
  /** A sub-agent: the session that started it, and that session's `agent` tool call. */
  parent: z.object({ sessionId: SessionId, toolUseId: z.string() }).optional(),
  /** The sub-agents this session started, oldest first. */
  children: z.array(SessionId).optional(),
  /** The session's egress policy as it stands (session/setNetwork changes it); `added`: hosts that answers (allow always) added to `allow`. */
  network: NetworkPolicyShown.optional(),
});
export type SessionInfo = z.infer<typeof SessionInfo>;

export const SessionCreate = clientRequest('session/create', {
  scope: 'global',
  description: 'Creates a session; its log starts with session.created. This connection becomes a controller of it.',
  params: SessionCreateParams,
  result: z.object({ sessionId: SessionId }),
});

export const SessionList = clientRequest('session/list', {
  scope: 'global',
  description: 'Lists sessions, newest first, a page at a time.',
  params: z
    .object({
      status: SessionStatus.optional(),
      workspace: path.optional(),
      limit: z.number().int().min(1).max(1000).optional(),
      cursor: name.optional(),
    })
    .default({}),
  result: z.object({ sessions: z.array(SessionInfo), cursor: z.string().optional() }),
});

export const SessionGet = clientRequest('session/get', {
  scope: 'global',
  description: 'One session: status, head, times, usage.',
  params: z.object({ sessionId: SessionId }),
  result: SessionInfo,
});

export const SessionPrompt = clientRequest('session/prompt', {
  scope: 'session',
  description:
    'Appends a user message; answers once it is durable. The turn runs on. This connection becomes a controller of the session (an observer is refused).',
  params: z.object({ sessionId: SessionId, content: PromptInput }),
  result: z.object({ turnId: z.string(), seq: z.number().int().nonnegative() }),
});

export const SessionInterrupt = clientRequest('session/interrupt', {
  scope: 'global',
  description: 'Stops the running turn, if any. Refused to an observer.',
  params: z.object({ sessionId: SessionId }),
  result: z.object({ interrupted: z.boolean() }),
});

export const SessionFork = clientRequest('session/fork', {
  scope: 'session',
  description: 'A new session whose log is the events [0, at) of this one; it then runs on its own. This connection becomes a controller of the new session.',
  params: z.object({ sessionId: SessionId, at: z.number().int().min(1) }),
  result: z.object({ sessionId: SessionId }),
});

export const AttachRole = z.enum(['controller', 'observer']);
export type AttachRole = z.infer<typeof AttachRole>;

export const SessionAttach = clientRequest('session/attach', {
  scope: 'global',
  description:
    'Declares this connection a controller of the session (it is then asked its permission questions) or an observer (it may read and follow, not prompt, interrupt or answer).',
  params: z.object({ sessionId: SessionId, role: AttachRole }),
  result: z.object({ role: AttachRole }),
});

export const SessionArchive = clientRequest('session/archive', {
  scope: 'session',
  description: 'Marks the session read-only; its log stays readable.',
  params: z.object({ sessionId: SessionId }),
  result: z.object({}),
});

export const SessionSteer = clientRequest('session/steer', {
  scope: 'session',
  description:
    "Adds user input to the running turn: durable when this answers, it joins that turn's next model call (`steered: true`). With no turn running it is a prompt: it queues a turn of its own (`steered: false`). Makes the connection a controller, as session/prompt does.",
  params: z.object({ sessionId: SessionId, content: PromptInput }),
  result: z.object({
    /** The turn the input joined, or the new turn it queued. */
    turnId: z.string(),
    seq: z.number().int().nonnegative(),
    steered: z.boolean(),
  }),
});

export const SessionRename = clientRequest('session/rename', {
  scope: 'session',
  description: 'Gives the session a new title (a session.renamed event). Refused to an observer.',
  params: z.object({ sessionId: SessionId, title: z.string().min(1).max(L.titleChars) }),
  result: z.object({}),
});

export const SessionSetBudget = clientRequest('session/setBudget', {
  scope: 'session',
  description:
    "Sets the session's budget from now on, raised or lowered (a budget.changed event); its sub-agents spend from it too, and `{}` removes it. A turn that stopped with budget_exceeded stays stopped: prompt again to go on. InvalidParams for a sub-agent (it spends its parent's budget) and for a maxCost on a model without a price. Refused to an observer.",
  params: z.object({ sessionId: SessionId, budget: Budget }),
  result: z.object({}),
});

export const SessionSetNetwork = clientRequest('session/setNetwork', {
  scope: 'session',
  description:
    "Sets the session's network policy from now on (a network.changed event): connections made after it are decided by it; tunnels already open stay open. `added` replaces the hosts answers added (`[]` forgets them all); without it they stay. InvalidParams for a pattern that is none of host, host:port, host:*, *.domain, and for a sub-agent (its tools run in its parent's sandbox, behind its parent's policy). Refused to an observer.",
  params: z.object({ sessionId: SessionId, network: NetworkPolicy.extend({ added: hostPatterns.optional() }) }),
  result: z.object({ network: NetworkPolicyShown }),
});

export const SessionDelete = clientRequest('session/delete', {
  scope: 'session',
  description:
    "Deletes the session for good: its log, its workspace copy when it is a fork's (never a workspace of yours), and its sub-agent sessions (`deleted` lists them all). SessionBusy while it or a sub-agent has a turn running or queued. Refused to an observer.",
  params: z.object({ sessionId: SessionId }),
  result: z.object({ deleted: z.array(SessionId) }),
});

export const SessionRollback = clientRequest('session/rollback', {
  scope: 'session',
  description:
    "Takes the last `turns` turns out of the model's context (a session.rolled_back event; the log keeps them, nothing is rewritten). Files they changed stay as they are. SessionBusy while a turn runs or is queued; InvalidPosition for more turns than the context has.",
  params: z.object({ sessionId: SessionId, turns: z.number().int().min(1).max(10_000) }),
  result: z.object({ seq: z.number().int().nonnegative(), turnIds: z.array(z.string()) }),
});
