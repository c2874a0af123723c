import { z } from 'zod';
import { ContentBlock, PromptContent, Usage } from './content.js';
import { Budget, UsageTotals } from './usage.js';
import { NetworkPolicyShown } from './network.js';

/**
 * Every event in a session log as it travels: `seq` is dense per session from 0, `ts` is
 * the daemon's wall clock in ms when the event was appended. This envelope is what the
 * log stores and the wire carries; `knownEvent` narrows it to a typed `KnownEvent`.
 */
export const Event = z.object({
  seq: z.number().int().nonnegative(),
  ts: z.number(),
  type: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
});
export type Event = z.infer<typeof Event>;

export const ToolErrorKind = z.enum(['sandbox_lost', 'interrupted', 'timeout', 'denied', 'tool_error']);
export type ToolErrorKind = z.infer<typeof ToolErrorKind>;

export const PermissionDecision = z.enum(['allow', 'deny', 'allow_always']);
export type PermissionDecision = z.infer<typeof PermissionDecision>;

const turnId = z.string();
const toolUseId = z.string();
const seq = z.number().int().nonnegative();
const input = z.record(z.string(), z.unknown());
/** What a turn's model calls used (its compaction and its sub-agents included), and their cost when the model has a price. */
const turnUsage = UsageTotals.optional();

/**
 * The data of each event type. Objects are loose: a newer daemon may add fields, and an
 * older reader keeps them (and ignores them). Required fields are what every daemon that
 * wrote the type has written; fields added later are optional.
 */
export const EventData = {
  /** The session's configuration as created (session/create params, workspace resolved). */
  'session.created': z.looseObject({
    workspace: z.string(),
    title: z.string().optional(),
    model: z.string().optional(),
    system: z.string().optional(),
    tools: z.array(z.string()).optional(),
    credentials: z.array(z.string()).optional(),
    budget: Budget.optional(),
    /** Set for a sub-agent: the session and the `agent` tool call that started it. */
    parent: z.object({ sessionId: z.string(), toolUseId }).optional(),
  }),
  'user.message': z.looseObject({ turnId, content: PromptContent }),
  /**
   * User input for the turn `joins` while it runs (session/steer): the turn's next model
   * call carries it. One that reaches the log after that turn ended is a turn of its own,
   * `turnId`, as a user.message would be.
   */
  'user.steer': z.looseObject({ turnId, joins: turnId, content: PromptContent }),
  'turn.started': z.looseObject({ turnId }),
  /** A model call leaves (`attempt` counts from 1); the reply, if any, is the next assistant.message. */
  'model.requested': z.looseObject({
    turnId,
    model: z.string(),
    attempt: z.number().int(),
    /** The user.steer events (by seq) this call carries for the first time, after what the turn had so far. */
    steers: z.array(seq).optional(),
  }),
  'assistant.message': z.looseObject({
    turnId,
    content: z.array(ContentBlock),
    stopReason: z.string().nullable(),
    usage: Usage,
  }),
  'tool.started': z.looseObject({
    turnId,
    toolUseId,
    name: z.string(),
    input,
    where: z.enum(['sandbox', 'daemon']),
    /** An `agent` call: the sub-agent session it runs in (named here before that session is created). */
    childSessionId: z.string().optional(),
  }),
  /**
   * A question for the session's controllers. `kind: "network"`: a connection through the
   * egress proxy waits (tool "network", input {host, port, toolUseId}); it has no turnId
   * when no turn runs (a background process), and its toolUseId is the question's own id.
   */
  'permission.requested': z.looseObject({ turnId: turnId.optional(), toolUseId, tool: z.string(), input, kind: z.enum(['tool', 'network']).optional() }),
  'permission.resolved': z.looseObject({
    turnId: turnId.optional(),
    toolUseId,
    decision: PermissionDecision,
    /** Who answered: a client's name, or the policy. */
    by: z.string(),
  }),
  'tool.result': z.looseObject({
    turnId,
    toolUseId,
    content: z.array(ContentBlock),
    isError: z.boolean(),
    errorKind: ToolErrorKind.optional(),
    durationMs: z.number().nonnegative(),
    /** An `agent` call's result: what the sub-agent's turn used, counted in the parent's turn and session. */
    usage: UsageTotals.optional(),
  }),
  'sandbox.provisioned': z.looseObject({
    sandboxId: z.string().optional(),
    isolation: z.string(),
    durationMs: z.number().nonnegative(),
    /** It came from the warm pool (started ahead of need, then bound to this session). */
    pooled: z.boolean().optional(),
    /** Loud notices: isolation weaker than bubblewrap, a limit that cannot be held. */
    warnings: z.array(z.string()).optional(),
    /** The sandbox's limits and how each is held: cgroup1, cgroup2, rlimit, or none. */
    limits: z.object({ pids: z.number(), memoryMb: z.number(), pidsMechanism: z.string(), memoryMechanism: z.string() }).optional(),
    /** The session's repos, cloned through the proxy when the sandbox started. */
    repos: z.array(z.object({ path: z.string(), cloned: z.boolean(), error: z.string().optional() })).optional(),
  }),
  /**
   * The egress proxy decided a connection: `reason` says which rule (a pattern, a preset, the
   * default, an address range, an answer). `toolUseId`: the tool call running when it was made.
   */
  'network.decided': z.looseObject({
    host: z.string(),
    port: z.number().int(),
    decision: z.enum(['allow', 'deny']),
    reason: z.string(),
    via: z.enum(['connect', 'http']),
    toolUseId: z.string().optional(),
    /** The address connected to (allowed), or the one refused. */
    address: z.string().optional(),
  }),
  'sandbox.lost': z.looseObject({ reason: z.string() }),
  /** A harness took the session up from the log: `pendingTurn` is the turn it carries on. */
  'harness.woke': z.looseObject({ fromSeq: seq, pendingTurn: z.string().nullable(), daemon: z.string().optional() }),
  /** Turns whose events end before `upToSeq` are replaced by `summary` in the model's context. */
  'context.compacted': z.looseObject({ upToSeq: seq, summary: z.string(), turns: z.number().int().optional(), usage: Usage.optional() }),
  'model.retry': z.looseObject({
    turnId,
    attempt: z.number().int(),
    reason: z.string(),
    delayMs: z.number().nonnegative(),
  }),
  'turn.completed': z.looseObject({ turnId, stopReason: z.string().nullable(), usage: turnUsage }),
  'turn.interrupted': z.looseObject({ turnId, usage: turnUsage }),
  /** `reason` names a failure a client may act on; older daemons and other failures leave it out. */
  'turn.failed': z.looseObject({ turnId, error: z.string(), reason: z.string().optional(), usage: turnUsage }),
  'session.archived': z.looseObject({}),
  'session.renamed': z.looseObject({ title: z.string() }),
  /** session/setBudget: the session's budget (its sub-agents' too) from now on; an empty object removes it. */
  'budget.changed': z.looseObject({ budget: Budget }),
  /** session/setNetwork: the session's network policy from now on, with the hosts answers added that it keeps. */
  'network.changed': z.looseObject({ network: NetworkPolicyShown }),
  /**
   * A model call of the session tree (this session or `sessionId`, one of its sub-agents)
   * holds `tokens` (and `costUsd`) of the tree's budget until it is settled: the most it is
   * expected to use. `key` names the call, so the call made again after a crash holds the same.
   */
  'budget.reserved': z.looseObject({ key: z.string(), sessionId: z.string(), tokens: z.number().nonnegative(), costUsd: z.number().nonnegative().optional() }),
  /** The call `key` ended: what it used (`tokens`, `costUsd`) is spent, its reservation released. */
  'budget.settled': z.looseObject({ key: z.string(), sessionId: z.string(), tokens: z.number().nonnegative(), costUsd: z.number().nonnegative().optional() }),
  /**
   * session/rollback: the turns `turnIds` (the last `turns` of the context, their user
   * messages from `fromSeq` on) leave the model's context; the log keeps them.
   */
  'session.rolled_back': z.looseObject({ turns: z.number().int().positive(), turnIds: z.array(turnId), fromSeq: seq }),
  'session.forked': z.looseObject({
    from: z.string(),
    at: seq,
    workspace: z.string(),
    /** Special files (FIFOs, sockets, devices) left out of the copy: the first 100, and how many in all. */
    skipped: z.array(z.string()).optional(),
    skippedCount: z.number().int().optional(),
  }),
} as const;

export type EventType = keyof typeof EventData;
export const EVENT_TYPES = Object.keys(EventData) as EventType[];

/** One event of a known type, its data typed: the discriminated union every reader narrows. */
export type KnownEvent = { [T in EventType]: { seq: number; ts: number; type: T; data: z.output<(typeof EventData)[T]> } }[EventType];
export type EventOf<T extends EventType> = Extract<KnownEvent, { type: T }>;

/** What a writer hands the log for one event: the type and data as its schema accepts them. */
export type NewKnownEvent = { [T in EventType]: { type: T; data: z.input<(typeof EventData)[T]> } }[EventType];

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EventData, type);
}

/**
 * The event as a `KnownEvent`, or undefined for a type this reader does not know (a newer
 * daemon's) or data that does not match its schema. That is the forward-compatibility
 * rule: readers narrow what they know, and pass everything else through as the plain
 * envelope (to show raw, or to skip), never crash on it.
 */
export function knownEvent(event: Event): KnownEvent | undefined {
  if (!isEventType(event.type)) return undefined;
  const data = EventData[event.type].safeParse(event.data);
  return data.success ? ({ seq: event.seq, ts: event.ts, type: event.type, data: data.data } as KnownEvent) : undefined;
}

/** Fields that readers iterate (blocks of content): each must be an array of objects. */
const BLOCK_FIELDS: Partial<Record<EventType, string>> = { 'assistant.message': 'content', 'tool.result': 'content' };

/**
 * The event narrowed like `knownEvent`, without running its schema: for events read back
 * from a session log, which only ever holds events its writer checked against their
 * schema (`validEvent`) when writing them. Logged events never change, and schemas only
 * gain optional fields, so what passed then passes now; running the schemas again cost
 * about 2 µs per event on every wake. What is left is a type check of the fields a reader
 * iterates, so that even a log nobody expected cannot make a reader throw.
 */
export function trustedEvent(event: Event): KnownEvent | undefined {
  if (!isEventType(event.type)) return undefined;
  const field = BLOCK_FIELDS[event.type];
  if (field !== undefined) {
    const blocks = event.data[field];
    if (!Array.isArray(blocks) || !blocks.every((b) => typeof b === 'object' && b !== null)) return undefined;
  }
  if (event.type === 'user.message' && typeof event.data['content'] !== 'string' && !Array.isArray(event.data['content'])) return undefined;
  return event as KnownEvent;
}

/**
 * Checks a new event against its type's schema and returns it typed, or throws a
 * `ZodError` naming the field: writers call this so the log only holds valid events.
 */
export function validEvent<T extends NewKnownEvent>(event: T): T {
  EventData[event.type].parse(event.data);
  return event;
}
