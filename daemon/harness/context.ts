import type { ContentBlock, PromptContent } from '../../protocol/index.js';
import { pendingTurn, type SessionState, type Turn } from './fold.js';

/** A tool as the Messages API takes it. */
export interface ApiTool {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
}

type CacheControl = { cache_control?: { type: 'ephemeral' } };
type Block = ContentBlock & CacheControl;
export interface ApiMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

export interface ModelRequest {
  model: string;
  max_tokens: number;
  system?: Array<{ type: 'text'; text: string } & CacheControl>;
  tools?: Array<ApiTool & CacheControl>;
  messages: ApiMessage[];
}

export interface ContextOptions {
  model: string;
  maxTokens: number;
  system: string;
  tools: readonly ApiTool[];
}

const COMPACTED_PREFIX = 'Summary of the earlier part of this conversation (older turns were compacted):\n\n';

/**
 * The turns in the context: those not covered by a compaction that have started, and
 * the turn being run (its turn.started may go out with its first model call).
 */
export function contextTurns(state: SessionState): Turn[] {
  const upTo = state.compaction?.upToSeq ?? -1;
  const current = pendingTurn(state);
  return state.turns.filter((t) => (t.started || t === current) && !(t.end && t.end.seq <= upTo) && !state.rolledBack.has(t.turnId));
}

function userBlocks(content: PromptContent): ContentBlock[] {
  return typeof content === 'string' ? [{ type: 'text', text: content }] : content;
}

/**
 * The turn's steered input that goes after its first `steps` steps: what a model call
 * carried once it had that many, and (at the end) what no call has carried yet.
 */
function steersAt(turn: Turn, steps: number): ApiMessage[] {
  const at = turn.steers.filter((s) => (s.at ?? turn.steps.length) === steps);
  return at.length > 0 ? [{ role: 'user', content: at.flatMap((s) => userBlocks(s.content)) }] : [];
}

/** A turn as alternating messages; a tool call without a recorded result gets one, never an orphan. */
function turnMessages(turn: Turn): ApiMessage[] {
  const messages: ApiMessage[] = [{ role: 'user', content: userBlocks(turn.content) }, ...steersAt(turn, 0)];
  for (const [i, step] of turn.steps.entries()) {
    if (step.content.length > 0) messages.push({ role: 'assistant', content: step.content });
    if (step.calls.length > 0) messages.push(toolResults(step));
    messages.push(...steersAt(turn, i + 1));
  }
  return messages;
}

function toolResults(step: Turn['steps'][number]): ApiMessage {
  return {
    role: 'user',
    content: step.calls.map((call) => ({
      type: 'tool_result',
      tool_use_id: call.toolUseId,
      content: call.result ? toolResultContent(call.result.content) : 'no result was recorded for this call (interrupted)',
      ...(call.result?.isError === false ? {} : { is_error: true }),
    })),
  };
}

function toolResultContent(content: ContentBlock[]): Extract<ContentBlock, { type: 'tool_result' }>['content'] {
  const blocks = content.filter((b): b is Extract<ContentBlock, { type: 'text' | 'image' }> => b.type === 'text' || b.type === 'image');
  return blocks.length > 0 ? blocks : '(no output)';
}

/**
 * Appends `m`, joined to the last message when both have the same role (tool results stay
 * first): the API wants strict alternation. A message not joined goes in as it is (the
 * same object each call, for a turn kept in `ENDED`); a joined one is a new object.
 */
function pushAlternating(out: ApiMessage[], m: ApiMessage): void {
  const last = out.at(-1);
  if (last && last.role === m.role) out[out.length - 1] = { role: m.role, content: [...last.content, ...m.content] };
  else out.push(m);
}

/**
 * An ended turn's messages, kept while its shape is as it was: the request is rebuilt for
 * every model call, and a long session's context is mostly turns that no longer change.
 * The key covers what the fold may still change in an ended turn (a late tool result).
 */
const ENDED = new WeakMap<Turn, { key: string; messages: ApiMessage[] }>();

function endedKey(turn: Turn): string {
  let results = 0;
  for (const step of turn.steps) for (const call of step.calls) if (call.result) results++;
  return `${turn.end!.seq}:${turn.steps.length}:${turn.steers.length}:${results}`;
}

function contextMessages(turn: Turn): ApiMessage[] {
  const alternated = (): ApiMessage[] => {
    const out: ApiMessage[] = [];
    for (const m of turnMessages(turn)) pushAlternating(out, m);
    return out;
  };
  if (!turn.end) return alternated();
  const key = endedKey(turn);
  const kept = ENDED.get(turn);
  if (kept?.key === key) return kept.messages;
  const messages = alternated();
  ENDED.set(turn, { key, messages });
  return messages;
}

/** The tools with the cache breakpoint on the last, made once per tool list. */
const MARKED_TOOLS = new WeakMap<readonly ApiTool[], Array<ApiTool & CacheControl>>();

function markedTools(tools: readonly ApiTool[]): Array<ApiTool & CacheControl> {
  let marked = MARKED_TOOLS.get(tools);
  if (!marked) {
    marked = tools.map((t, i) => (i === tools.length - 1 ? { ...t, cache_control: { type: 'ephemeral' as const } } : { ...t }));
    MARKED_TOOLS.set(tools, marked);
  }
  return marked;
}

/**
 * The request for the next model call, built from the log's state. Deterministic: the
 * same log gives the same bytes, and each request's messages extend the previous
 * one's, so with breakpoints on the tools, the system prompt and the last message,
 * turn N+1 reads turn N's prefix from the prompt cache.
 */
export function buildRequest(state: SessionState, options: ContextOptions): ModelRequest {
  const messages: ApiMessage[] = [];
  if (state.compaction) messages.push({ role: 'user', content: [{ type: 'text', text: COMPACTED_PREFIX + state.compaction.summary }] });
  for (const turn of contextTurns(state)) for (const m of contextMessages(turn)) pushAlternating(messages, m);
  const last = messages.at(-1);
  if (last) {
    // A copy: the message itself may be an ended turn's, kept for the next request.
    const blocks = [...last.content];
    blocks[blocks.length - 1] = { ...blocks[blocks.length - 1]!, cache_control: { type: 'ephemeral' } };
    messages[messages.length - 1] = { role: last.role, content: blocks };
  }
  const tools = markedTools(options.tools);
  return {
    model: options.model,
    max_tokens: options.maxTokens,
    ...(options.system ? { system: [{ type: 'text' as const, text: options.system, cache_control: { type: 'ephemeral' as const } }] } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    messages,
  };
}

/** JSON of the messages and tool lists the requests share (see contextMessages, markedTools). */
const JSON_OF = new WeakMap<object, string>();

function jsonOf(value: object): string {
  let json = JSON_OF.get(value);
  if (json === undefined) JSON_OF.set(value, (json = JSON.stringify(value)));
  return json;
}

const BODIES = new WeakMap<ModelRequest, Buffer>();

/**
 * The body of the streamed model call for `request`: exactly JSON.stringify({...request,
 * stream: true}), UTF-8. Made once per request (the token estimate and the call share it)
 * from parts, so the messages and tools a request shares with the one before are serialized
 * once and a long context is not walked again on every call. Bytes, off the JS heap: a body
 * lives as long as its call streams, and the young-generation collector would copy a string
 * that size on every pass while a hundred calls stream.
 */
export function requestBody(request: ModelRequest): Buffer {
  let body = BODIES.get(request);
  if (body === undefined) {
    const { messages, tools, ...rest } = request;
    // JSON.stringify puts `tools`, `messages` and then `stream` last, as buildRequest orders them.
    const parts = [JSON.stringify(rest).slice(0, -1)];
    if (tools) parts.push(',"tools":', jsonOf(tools));
    parts.push(',"messages":[', messages.map(jsonOf).join(','), '],"stream":true}');
    BODIES.set(request, (body = Buffer.from(parts.join(''))));
  }
  return body;
}

/** A rough size in tokens (body bytes / 4): enough to decide when to compact and what a call reserves of a budget. */
export function estimateTokens(request: ModelRequest): number {
  return Math.ceil(requestBody(request).length / 4);
}

const SUMMARY_INSTRUCTION =
  'Summarise the conversation above for your own later use: the user\'s goals, decisions taken, files and commands involved, results, and anything still open. Be concise and specific; this summary will replace the older turns in your context.';

/** A request that asks the model to summarise some turns (for compaction). */
export function buildSummaryRequest(state: SessionState, turns: Turn[], options: ContextOptions): ModelRequest {
  const request = buildRequest({ ...state, turns }, { ...options, tools: [] });
  const messages: ApiMessage[] = [];
  for (const m of [...request.messages.map(stripCache), { role: 'user' as const, content: [{ type: 'text' as const, text: SUMMARY_INSTRUCTION }] }]) pushAlternating(messages, m);
  return { model: options.model, max_tokens: Math.min(options.maxTokens, 4096), ...(request.system ? { system: request.system } : {}), messages };
}

function stripCache(message: ApiMessage): ApiMessage {
  return { role: message.role, content: message.content.map(({ cache_control: _drop, ...block }) => block as Block) };
}
