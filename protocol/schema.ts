import { z } from 'zod';
import { ClientRequests, DaemonMessages } from './registry.js';
import { Event, EventData, EVENT_TYPES } from './events.js';
import { ErrorCode } from './errors.js';
import { PROTOCOL_VERSION } from './version.js';

export type JsonSchema = Record<string, unknown>;

/** One zod schema as JSON Schema: params as a sender writes them (`input`), results as a receiver reads them (`output`). */
export function toSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
}

/**
 * The whole protocol as one JSON document: every method with its direction, scope
 * and params/result schemas, the event envelope and each event type's data, the
 * error codes. Params are described as a sender writes them (defaults optional),
 * results as a receiver reads them.
 */
export function protocolJsonSchema(): JsonSchema {
  const methods: Record<string, JsonSchema> = {};
  for (const def of [...Object.values(ClientRequests), ...Object.values(DaemonMessages)]) {
    methods[def.method] = {
      kind: def.kind,
      direction: def.direction,
      scope: def.scope,
      description: def.description,
      params: toSchema(def.params, 'input'),
      ...(def.kind === 'request' ? { result: toSchema(def.result, 'output') } : {}),
    };
  }
  const events: Record<string, JsonSchema> = {};
  for (const [type, data] of Object.entries(EventData)) events[type] = toSchema(data, 'output');
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'agentd protocol',
    protocolVersion: PROTOCOL_VERSION,
    framing: 'JSON-RPC 2.0 with LSP framing (Content-Length header)',
    errorCodes: ErrorCode,
    event: toSchema(Event, 'output'),
    /** The known events as one union, discriminated on `type` (readers ignore other types). */
    knownEvent: {
      oneOf: EVENT_TYPES.map((type) => ({
        type: 'object',
        properties: { seq: { type: 'integer', minimum: 0 }, ts: { type: 'number' }, type: { const: type }, data: { $ref: `#/eventData/${type}` } },
        required: ['seq', 'ts', 'type', 'data'],
      })),
    },
    eventData: events,
    methods,
  };
}
