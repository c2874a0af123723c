import { mkdir, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  AgentdError,
  ErrorCode,
  type Budget,
  type NetworkPolicy,
  type NetworkPolicyShown,
  type PromptContent,
  type SessionCreateParams,
  type SessionInfo,
  type SessionStatus,
  type UsageTotals,
} from '../protocol/index.js';
import { fromLogError } from './errors.js';
import { newSessionId, newTurnId } from './ids.js';
import { LogError, type NewEvent, type SessionLog, type SessionMeta } from './log/session-log.js';
import type { SessionLeases } from './log/leases.js';
import type { SandboxPolicy } from './containment.js';
import { appendEvents, checkedEvent } from './events.js';
import { copyWorkspace } from './workspace-copy.js';
import type { ToolDefinition } from '../sandbox/types.js';
import { ZERO_USAGE, type PriceTable } from './harness/usage.js';
import { childTurnId, type ChildSpec } from './harness/agent-tool.js';
import type { SpeculativeInput } from './harness/session-writer.js';

/** Events copied per batch when forking, so a fork of a long session never holds it all. */
const FORK_PAGE = 5000;
/** Sessions read from the log per step of a listing. */
const LIST_PAGE = 50;

/** What the daemon keeps in a session's metadata beside its log. */
export interface SessionRecord extends SessionMeta {
  title?: string;
  workspace: string;
  model?: string;
  status: SessionStatus;
  usage: UsageTotals;
  /** The turn running now (null or absent when none): what session/steer joins. */
  runningTurn?: string | null;
  /** A sub-agent: the session that started it and that session's `agent` call. */
  parent?: { sessionId: string; toolUseId: string };
  /** Sub-agents this session started (its harness keeps the list). */
  children?: string[];
  config: Omit<SessionCreateParams, 'workspace' | 'title' | 'model'>;
  forkedFrom?: { sessionId: string; at: number };
  /** The tools of the session's own MCP servers, listed once by the harness. */
  toolCatalog?: ToolDefinition[];
  /** Hosts ("host:port") that "allow always" answers to network questions added to its policy. */
  networkAdded?: string[];
}

/**
 * Sessions as the protocol sees them, over the session log. Session-scoped calls
 * arrive here already serialised per session by the daemon's queue.
 */
export class SessionService {
  constructor(
    private readonly log: SessionLog,
    private readonly workspacesDir: string,
    private readonly policy: SandboxPolicy,
    /** Prices for budgets with a `maxCost`, and the model of sessions that name none. */
    private readonly pricing: { prices: PriceTable; defaultModel: string },
    /** With a shared log: who runs which session now. */
    private readonly leases?: SessionLeases,
    /** The network policy of a session created without one. */
    private readonly networkDefault: NetworkPolicy = { default: 'deny' },
  ) {}

  async create(params: SessionCreateParams): Promise<{ sessionId: string }> {
    await requireDirectory(params.workspace);
    this.policy.checkWorkspace(params.workspace);
    this.policy.checkRequest(params.sandbox);
    this.checkBudget('session/create', params.model, params.budget);
    const now = Date.now();
    const { workspace, title, model, ...rest } = params;
    // Resolved now, so the session keeps the policy it started with whatever the daemon's configuration becomes.
    const config = { ...rest, network: rest.network ?? this.networkDefault };
    const record: SessionRecord = {
      sessionId: newSessionId(now),
      createdAt: now,
      updatedAt: now,
      workspace,
      status: 'idle',
      usage: ZERO_USAGE,
      config,
      ...(title !== undefined ? { title } : {}),
      ...(model !== undefined ? { model } : {}),
    };
    const created = checkedEvent({ type: 'session.created', data: { workspace, title, model, ...config } });
    await this.log.create(record, [created]).catch((e) => Promise.reject(fromLogError(e)));
    return { sessionId: record.sessionId };
  }

  /**
   * A sub-agent's session: the parent's workspace, model, policy and credentials, the tools
   * it was given, and the task as its one prompt; it spends from its parent's budget (no budget of its own).
   * Nothing happens when it exists already (a call resumed after a crash).
   */
  async createChild(spec: ChildSpec): Promise<void> {
    const parent = await this.record(spec.parentSessionId);
    const now = Date.now();
    const { budget: _parents, ...inherited } = parent.config;
    const config = { ...inherited, tools: spec.tools };
    const link = { sessionId: spec.parentSessionId, toolUseId: spec.toolUseId };
    const record: SessionRecord = {
      sessionId: spec.childSessionId,
      createdAt: now,
      updatedAt: now,
      workspace: parent.workspace,
      status: 'queued',
      usage: ZERO_USAGE,
      config,
      parent: link,
      ...(spec.title !== undefined ? { title: spec.title } : {}),
      ...(parent.model !== undefined ? { model: parent.model } : {}),
    };
    const events = [
      checkedEvent({ type: 'session.created', data: { workspace: parent.workspace, title: spec.title, model: parent.model, ...config, parent: link } }),
      checkedEvent({ type: 'user.message', data: { turnId: childTurnId(spec.toolUseId), content: spec.prompt } }),
    ];
    await this.log.create(record, events).catch((error: unknown) => (error instanceof LogError && error.kind === 'exists' ? undefined : Promise.reject(fromLogError(error))));
  }

  /** A cost limit needs the model's price; a limit that could never be checked is refused now, not ignored. */
  private checkBudget(method: string, model: string | undefined, budget: Budget | undefined): void {
    const priced = model ?? this.pricing.defaultModel;
    if (budget?.maxCost !== undefined && !this.pricing.prices[priced]) {
      throw new AgentdError(ErrorCode.InvalidParams, `invalid params for ${method}: budget.maxCost: the daemon has no price for ${priced} (prices in config.json)`, {
        issues: [{ path: 'budget.maxCost', message: `no price for ${priced}` }],
      });
    }
  }

  /**
   * The budget of the session and its sub-agents from now on (`{}`: none). The runners read
   * it from the log (budget.changed) before their next model call, on whichever daemon.
   */
  async setBudget(sessionId: string, budget: Budget): Promise<void> {
    const record = await this.record(sessionId);
    requireWritable(record);
    refuseSubAgent(record, 'session/setBudget', `it spends from the budget of ${record.parent?.sessionId}`, 'a sub-agent has no budget of its own');
    this.checkBudget('session/setBudget', record.model, budget);
    const { budget: _old, ...config } = record.config;
    const limited = budget.maxTokens !== undefined || budget.maxCost !== undefined;
    await appendEvents(this.log, sessionId, [{ type: 'budget.changed', data: { budget } }], { config: limited ? { ...config, budget } : config }).catch((e) =>
      Promise.reject(fromLogError(e, sessionId)),
    );
  }

  async record(sessionId: string): Promise<SessionRecord> {
    const record = await this.find(sessionId);
    if (!record) throw new AgentdError(ErrorCode.SessionNotFound, `unknown session ${sessionId}`, { sessionId });
    return record;
  }

  /** The session's record, or undefined for an unknown session. */
  async find(sessionId: string): Promise<SessionRecord | undefined> {
    const meta = await this.log.getMeta(sessionId).catch((e) => Promise.reject(fromLogError(e, sessionId)));
    // The daemon alone writes session metadata, always as a SessionRecord.
    return meta as SessionRecord | undefined;
  }

  async info(sessionId: string): Promise<SessionInfo> {
    const [record, head, holders] = await Promise.all([this.record(sessionId), this.log.head(sessionId), this.holders([sessionId])]);
    return toInfo(record, head, holders.get(sessionId));
  }

  private holders(sessionIds: string[]): Promise<Map<string, string>> {
    return this.leases ? this.leases.holders(sessionIds).catch((e) => Promise.reject(fromLogError(e))) : Promise.resolve(new Map());
  }

  async list(options: {
    status?: SessionStatus;
    workspace?: string;
    limit?: number;
    cursor?: string;
    /** Only sessions the asking connection may see (its token's scope). */
    visible?: (sessionId: string) => boolean;
  }): Promise<{ sessions: SessionInfo[]; cursor?: string }> {
    const { status, workspace, visible } = options;
    const limit = options.limit ?? 100;
    const sessions: SessionInfo[] = [];
    let cursor = options.cursor;
    // Metadata is read a few sessions at a time and kept only as SessionInfo: a full
    // record carries the session's config, system prompt included.
    do {
      const page = await this.log.list({
        withHeads: true,
        limit: Math.min(LIST_PAGE, limit - sessions.length),
        ...(cursor !== undefined ? { cursor } : {}),
        filter: (meta) =>
          (status === undefined || meta.status === status) && (workspace === undefined || meta.workspace === workspace) && (visible === undefined || visible(meta.sessionId)),
      });
      const holders = await this.holders(page.sessions.map((meta) => meta.sessionId));
      for (const [i, meta] of page.sessions.entries()) sessions.push(toInfo(meta as SessionRecord, page.heads![i]!, holders.get(meta.sessionId)));
      cursor = page.cursor;
    } while (cursor !== undefined && sessions.length < limit);
    return cursor !== undefined ? { sessions, cursor } : { sessions };
  }

  /**
   * Appends the user message; answers once it is durable. `sequenced` hears of it as soon
   * as its seq is assigned, with the promise of its durability (see SpeculativeInput).
   */
  async prompt(sessionId: string, content: PromptContent, sequenced?: (input: SpeculativeInput) => void): Promise<{ turnId: string; seq: number }> {
    const record = await this.record(sessionId);
    requireWritable(record);
    const turnId = newTurnId();
    const status: SessionStatus = record.status === 'idle' ? 'queued' : record.status;
    const message = { type: 'user.message', data: { turnId, content } } as const;
    let write: Promise<number[]> | undefined;
    // A microtask on: a log may assign the seq before appendEvents has returned the write.
    const onSequenced = sequenced && ((seq: number) => sequenced({ seq, event: message, durable: Promise.resolve().then(() => write).then(() => undefined) }));
    write = appendEvents(this.log, sessionId, [message], { status }, onSequenced && { onSequenced });
    const [seq] = await write.catch((e) => Promise.reject(fromLogError(e, sessionId)));
    return { turnId, seq: seq! };
  }

  async rename(sessionId: string, title: string): Promise<void> {
    requireWritable(await this.record(sessionId));
    await appendEvents(this.log, sessionId, [{ type: 'session.renamed', data: { title } }], { title }).catch((e) => Promise.reject(fromLogError(e, sessionId)));
  }

  /**
   * The session's network policy from now on; `added` (the hosts answers added) replaces
   * the kept list when given. The egress proxy reads the record at each connection, so the
   * next one is decided by it. Runs on the session's queue, where answers add hosts too.
   */
  async setNetwork(sessionId: string, network: NetworkPolicy & { added?: string[] }): Promise<NetworkPolicyShown> {
    const record = await this.record(sessionId);
    requireWritable(record);
    refuseSubAgent(record, 'session/setNetwork', `its tools run in its parent's sandbox, behind the network policy of ${record.parent?.sessionId}`, 'a sub-agent has no network of its own');
    const { added: given, ...policy } = network;
    const added = given ? [...new Set(given)] : (record.networkAdded ?? []);
    const shown = { ...policy, added };
    await appendEvents(this.log, sessionId, [{ type: 'network.changed', data: { network: shown } }], { config: { ...record.config, network: policy }, networkAdded: added }).catch((e) =>
      Promise.reject(fromLogError(e, sessionId)),
    );
    return shown;
  }

  /**
   * Removes the session's log, and its workspace when it is a fork's copy (in the data
   * dir; a workspace the user named is theirs and stays). Idle or archived sessions only.
   */
  async delete(sessionId: string): Promise<void> {
    const record = await this.record(sessionId);
    requireIdle(record, 'deleted');
    await this.log.delete(sessionId).catch((e) => Promise.reject(fromLogError(e, sessionId)));
    const inside = relative(this.workspacesDir, record.workspace);
    if (record.forkedFrom && inside === sessionId) await rm(record.workspace, { recursive: true, force: true });
  }

  async archive(sessionId: string): Promise<void> {
    const record = await this.record(sessionId);
    if (record.status === 'archived') return;
    await appendEvents(this.log, sessionId, [{ type: 'session.archived', data: {} }], { status: 'archived' }).catch((e) =>
      Promise.reject(fromLogError(e, sessionId)),
    );
  }

  /**
   * A new session whose log is events [0, at) of this one and whose workspace is a
   * copy of this one's files as they are now (files are not rewound to `at`).
   */
  async fork(sessionId: string, at: number): Promise<{ sessionId: string }> {
    const source = await this.record(sessionId);
    const head = await this.log.head(sessionId);
    if (at > head) {
      throw new AgentdError(ErrorCode.InvalidPosition, `fork position ${at} is past the head ${head}`, { headSeq: head });
    }
    // The events are copied as they are stored: a newer daemon's types too.
    const events: NewEvent[] = [];
    for (let from = 0; from < at; ) {
      const page = await this.log.read(sessionId, { from, to: at, limit: FORK_PAGE });
      for (const e of page.events) events.push({ type: e.type, data: e.data });
      if (page.next === undefined) break;
      from = page.next;
    }
    const now = Date.now();
    const forkId = newSessionId(now);
    const workspace = join(this.workspacesDir, forkId);
    await mkdir(this.workspacesDir, { recursive: true, mode: 0o700 });
    const copy = await copyWorkspace(source.workspace, workspace, this.policy.config.forkMaxBytes);
    const record: SessionRecord = {
      ...source,
      sessionId: forkId,
      createdAt: now,
      updatedAt: now,
      workspace,
      status: 'idle',
      usage: ZERO_USAGE,
      forkedFrom: { sessionId, at },
    };
    const skipped = copy.skippedCount ? { skipped: copy.skipped, skippedCount: copy.skippedCount } : {};
    events.push(checkedEvent({ type: 'session.forked', data: { from: sessionId, at, workspace, ...skipped } }));
    try {
      await this.log.create(record, events);
    } catch (error) {
      await rm(workspace, { recursive: true, force: true });
      throw fromLogError(error);
    }
    return { sessionId: forkId };
  }
}

/** Refuses a session with a turn running, queued or waiting for an answer. */
export function requireIdle(record: SessionRecord, what: string): void {
  if (record.status === 'idle' || record.status === 'archived') return;
  throw new AgentdError(ErrorCode.SessionBusy, `session ${record.sessionId} is ${record.status} and cannot be ${what}: interrupt it or wait for its turn to end`, {
    sessionId: record.sessionId,
    status: record.status,
  });
}

export function requireWritable(record: SessionRecord): void {
  if (record.status === 'archived') {
    throw new AgentdError(ErrorCode.SessionArchived, `session ${record.sessionId} is archived and read-only`, {
      sessionId: record.sessionId,
    });
  }
}

/** What belongs to a session tree's root (its budget, its network) is refused on a sub-agent: `why` says where it comes from. */
function refuseSubAgent(record: SessionRecord, method: string, why: string, issue: string): void {
  if (!record.parent) return;
  throw new AgentdError(ErrorCode.InvalidParams, `invalid params for ${method}: ${record.sessionId} is a sub-agent: ${why}; set that one`, {
    issues: [{ path: 'sessionId', message: issue }],
  });
}

async function requireDirectory(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new AgentdError(ErrorCode.InvalidParams, `invalid params for session/create: workspace: ${path} is not a directory`, {
      issues: [{ path: 'workspace', message: 'not a directory' }],
    });
  }
}

function toInfo(record: SessionRecord, headSeq: number, runningOn: string | undefined): SessionInfo {
  return {
    sessionId: record.sessionId,
    workspace: record.workspace,
    status: record.status,
    headSeq,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    usage: record.usage ?? ZERO_USAGE,
    ...(record.title !== undefined ? { title: record.title } : {}),
    ...(record.model !== undefined ? { model: record.model } : {}),
    ...(record.forkedFrom !== undefined ? { forkedFrom: record.forkedFrom } : {}),
    ...(record.config.budget !== undefined ? { budget: record.config.budget } : {}),
    ...(record.parent !== undefined ? { parent: record.parent } : {}),
    ...(record.children?.length ? { children: record.children } : {}),
    ...(runningOn !== undefined ? { runningOn } : {}),
    ...(record.config?.network ? { network: { ...record.config.network, added: record.networkAdded ?? [] } } : {}),
  };
}
