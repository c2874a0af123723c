import { z } from 'zod';
import { ContentBlock, PromptContent, Usage } from './content.js';

/**
 * Every event in a session log: `seq` is dense per session from 0, `ts` is the
 * daemon's wall clock in ms when the event was appended. Clients ignore types they
 * do not know; the list grows.
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

/** Data of each known event type. `passthrough` so additions do not break old readers. */
export const EventData = {
  'session.created': z.looseObject({
    workspace: z.string(),
    title: z.string().optional(),
    model: z.string().optional(),
    forkedFrom: z.object({ sessionId: z.string(), at: z.number().int() }).optional(),
  }),
  'user.message': z.looseObject({ turnId: z.string(), content: PromptContent }),
  'turn.started': z.looseObject({ turnId: z.string() }),
  'model.requested': z.looseObject({ turnId: z.string(), model: z.string(), attempt: z.number().int() }),
  'assistant.message': z.looseObject({
    turnId: z.string(),
    content: z.array(ContentBlock),
    stopReason: z.string().nullable(),
    usage: Usage,
  }),
  'tool.started': z.looseObject({
    turnId: z.string(),
    toolUseId: z.string(),
    name: z.string(),
    input: z.record(z.string(), z.unknown()),
    where: z.enum(['sandbox', 'daemon']),
  }),
  'permission.requested': z.looseObject({
    turnId: z.string(),
    toolUseId: z.string(),
    tool: z.string(),
    input: z.record(z.string(), z.unknown()),
  }),
  'permission.resolved': z.looseObject({
    toolUseId: z.string(),
    decision: PermissionDecision,
    by: z.string(),
  }),
  'tool.result': z.looseObject({
    turnId: z.string(),
    toolUseId: z.string(),
    content: z.array(ContentBlock),
    isError: z.boolean(),
    errorKind: ToolErrorKind.optional(),
    durationMs: z.number().nonnegative(),
  }),
  'sandbox.provisioned': z.looseObject({
    isolation: z.string(),
    durationMs: z.number().nonnegative(),
    /** It came from the warm pool (started ahead of need, then bound to this session). */
    pooled: z.boolean().optional(),
    /** The sandbox's limits and how each is held: cgroup1, cgroup2, rlimit, or none. */
    limits: z.object({ pids: z.number(), memoryMb: z.number(), pidsMechanism: z.string(), memoryMechanism: z.string() }).optional(),
  }),
  'sandbox.lost': z.looseObject({ reason: z.string() }),
  'harness.woke': z.looseObject({ fromSeq: z.number().int(), pendingTurn: z.string().nullable(), daemon: z.string().optional() }),
  'context.compacted': z.looseObject({ upToSeq: z.number().int(), summary: z.string() }),
  'model.retry': z.looseObject({
    turnId: z.string(),
    attempt: z.number().int(),
    reason: z.string(),
    delayMs: z.number().nonnegative(),
  }),
  'turn.completed': z.looseObject({ turnId: z.string(), stopReason: z.string().nullable() }),
  'turn.interrupted': z.looseObject({ turnId: z.string() }),
  'turn.failed': z.looseObject({ turnId: z.string(), error: z.string() }),
  'session.archived': z.looseObject({}),
  'session.forked': z.looseObject({
    from: z.string(),
    at: z.number().int(),
    workspace: z.string(),
    /** Special files (FIFOs, sockets, devices) left out of the copy: the first 100, and how many in all. */
    skipped: z.array(z.string()).optional(),
    skippedCount: z.number().int().optional(),
  }),
} as const;

export type EventType = keyof typeof EventData;
export const EVENT_TYPES = Object.keys(EventData) as EventType[];
export type EventDataOf<T extends EventType> = z.infer<(typeof EventData)[T]>;
