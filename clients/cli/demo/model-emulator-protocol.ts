// Wire-level pieces of the Messages-API emulator: reply scripts, request
// validation, token/cache accounting and response/SSE event construction.
// Pure functions and per-instance classes only; no module-level mutable state.
import { createHash, randomBytes } from 'node:crypto';

/** A request as the emulator saw it. `status` is filled in once answered. */
export interface RecordedRequest {
  index: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Parsed JSON body (undefined when the body was empty or not JSON). */
  body: any;
  time: number;
  status?: number;
  /** Kind of reply used (`text`, `tool_use`, `error`, ...) or `rejected`. */
  replyKind?: string;
  /** True when the client went away before the reply finished. */
  aborted?: boolean;
  /** True when the emulator cut the connection on purpose (a `disconnect` reply). */
  disconnected?: boolean;
}

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal';

interface Timing {
  /** Wait this long before the first byte of the response. */
  delayMs?: number;
}
export interface TextReply extends Timing {
  kind: 'text';
  text: string;
  /** Explicit chunks (joined they should equal `text`) or a chunk count. Default 3. */
  chunks?: string[] | number;
  /** Delay between streamed chunks. */
  chunkDelayMs?: number;
  stopReason?: StopReason;
}
export interface ToolCall {
  /** Defaults to a fresh `toolu_...` id. */
  id?: string;
  name: string;
  input: unknown;
}
export interface ToolUseReply extends Timing {
  kind: 'tool_use';
  calls: ToolCall[];
  /** Optional text block before the tool_use blocks. */
  text?: string;
  /** How many input_json_delta chunks per tool call (default 3). */
  jsonChunks?: number;
  chunkDelayMs?: number;
}
export interface ErrorReply extends Timing {
  kind: 'error';
  status: number;
  /** API error type; defaults from the status (429 rate_limit_error, 529 overloaded_error, ...). */
  errorType?: string;
  message?: string;
  /** Sent as the `retry-after` header. */
  retryAfter?: number | string;
  headers?: Record<string, string>;
}
export interface DisconnectReply extends Timing {
  kind: 'disconnect';
  /** Streaming: SSE events sent before the socket is destroyed (default 4). Non-streaming: ignored. */
  afterEvents?: number;
  /** Text of the message that gets cut off. */
  text?: string;
}
export interface HangReply extends Timing {
  kind: 'hang';
  /** Streaming: send this many SSE events first, then go silent (default 0: no response at all). */
  afterEvents?: number;
}
export interface StreamErrorReply extends Timing {
  kind: 'stream_error';
  /** SSE events sent before the `error` event (default 4). Non-streaming requests get an HTTP error instead. */
  afterEvents?: number;
  errorType?: string;
  message?: string;
}
export type StaticReply = TextReply | ToolUseReply | ErrorReply | DisconnectReply | HangReply | StreamErrorReply;
export type ReplyFn = (req: RecordedRequest) => Reply | Promise<Reply>;
export type Reply = StaticReply | ReplyFn;

/** Convenience constructors for scripted replies. */
export const reply = Object.freeze({
  text: (text: string, opts: Omit<TextReply, 'kind' | 'text'> = {}): TextReply => ({ kind: 'text', text, ...opts }),
  toolUse: (calls: ToolCall | ToolCall[], opts: Omit<ToolUseReply, 'kind' | 'calls'> = {}): ToolUseReply => ({
    kind: 'tool_use',
    calls: Array.isArray(calls) ? calls : [calls],
    ...opts,
  }),
  error: (status: number, opts: Omit<ErrorReply, 'kind' | 'status'> = {}): ErrorReply => ({ kind: 'error', status, ...opts }),
  rateLimited: (retryAfter?: number | string, opts: Omit<ErrorReply, 'kind' | 'status'> = {}): ErrorReply =>
    ({ kind: 'error', status: 429, ...(retryAfter !== undefined ? { retryAfter } : {}), ...opts }),
  overloaded: (message = 'Overloaded'): ErrorReply => ({ kind: 'error', status: 529, message }),
  serverError: (message = 'Internal server error'): ErrorReply => ({ kind: 'error', status: 500, message }),
  disconnect: (opts: Omit<DisconnectReply, 'kind'> = {}): DisconnectReply => ({ kind: 'disconnect', ...opts }),
  hang: (opts: Omit<HangReply, 'kind'> = {}): HangReply => ({ kind: 'hang', ...opts }),
  streamError: (opts: Omit<StreamErrorReply, 'kind'> = {}): StreamErrorReply => ({ kind: 'stream_error', ...opts }),
});

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

export function errorTypeFor(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export function newId(prefix: string): string {
  return prefix + '01' + randomBytes(12).toString('base64url').replace(/[-_]/g, 'x');
}

export function errorBody(type: string, message: string, requestId: string): unknown {
  return { type: 'error', error: { type, message }, request_id: requestId };
}

// ---------------------------------------------------------------- validation

export class RequestInvalid extends Error {}

function fail(message: string): never {
  throw new RequestInvalid(message);
}

function blocksOf(content: unknown, where: string): any[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) fail(`${where}.content: Input should be a valid list or string`);
  return content;
}

/** Throws RequestInvalid with an API-like message when `body` would be rejected by the real API. */
export function validateRequest(body: any): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) fail('Request body must be a JSON object');
  if (typeof body.model !== 'string' || body.model === '') fail('model: Field required');
  if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) fail('max_tokens: Field required (a positive integer)');
  if (body.stream !== undefined && typeof body.stream !== 'boolean') fail('stream: Input should be a valid boolean');
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) fail('messages: at least one message is required');
  let breakpoints = 0;
  const countCC = (b: any) => {
    if (b && typeof b === 'object' && b.cache_control != null) breakpoints++;
  };
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) fail('tools: Input should be a valid list');
    body.tools.forEach((t: any, i: number) => {
      if (!t || typeof t.name !== 'string') fail(`tools.${i}.name: Field required`);
      countCC(t);
    });
  }
  if (body.system !== undefined && typeof body.system !== 'string') {
    if (!Array.isArray(body.system)) fail('system: Input should be a valid list or string');
    body.system.forEach(countCC);
  }
  let pendingToolUses: string[] = [];
  messages.forEach((m: any, i: number) => {
    const where = `messages.${i}`;
    if (!m || (m.role !== 'user' && m.role !== 'assistant')) fail(`${where}.role: Input should be 'user' or 'assistant'`);
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== expected) {
      fail(i === 0 ? 'messages: first message must use the "user" role'
        : `messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
    }
    const blocks = blocksOf(m.content, where);
    if (blocks.length === 0 && !(m.role === 'assistant' && i === messages.length - 1)) fail(`${where}: all messages must have non-empty content except for the optional final assistant message`);
    const toolResultIds: string[] = [];
    const toolUseIds: string[] = [];
    blocks.forEach((b: any, j: number) => {
      if (!b || typeof b.type !== 'string') fail(`${where}.content.${j}.type: Field required`);
      countCC(b);
      if (b.type === 'text' && (typeof b.text !== 'string' || b.text === '')) fail(`${where}.content.${j}: text content blocks must be non-empty`);
      if (b.type === 'tool_use') {
        if (m.role !== 'assistant') fail(`${where}.content.${j}: tool_use blocks can only appear in assistant messages`);
        if (typeof b.id !== 'string' || typeof b.name !== 'string') fail(`${where}.content.${j}: tool_use requires id and name`);
        toolUseIds.push(b.id);
      }
      if (b.type === 'tool_result') {
        if (m.role !== 'user') fail(`${where}.content.${j}: tool_result blocks can only appear in user messages`);
        toolResultIds.push(b.tool_use_id);
      }
    });
    if (m.role === 'user') {
      const missing = pendingToolUses.filter((id) => !toolResultIds.includes(id));
      if (missing.length > 0) {
        fail(`messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
      const unexpected = toolResultIds.filter((id) => !pendingToolUses.includes(id));
      if (unexpected.length > 0) {
        fail(`${where}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${unexpected.join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
      }
      pendingToolUses = [];
    } else {
      pendingToolUses = toolUseIds;
    }
  });
  if (pendingToolUses.length > 0) {
    fail(`messages.${messages.length - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${pendingToolUses.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
  }
  if (breakpoints > 4) fail(`A maximum of 4 blocks with cache_control may be provided. Found ${breakpoints}.`);
}

// ---------------------------------------------------------- usage and caching

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export const tokensOf = (s: string): number => Math.ceil(s.length / 4);

interface Segment {
  tokens: number;
  key: string;
  breakpoint: boolean;
}

function stripCC(b: any): unknown {
  if (!b || typeof b !== 'object') return b;
  const { cache_control: _ignored, ...rest } = b;
  return rest;
}

/** The prompt as the cache sees it: tools, then system, then message blocks, each keyed by its whole prefix. */
function segmentsOf(body: any): Segment[] {
  const raw: Array<{ text: string; breakpoint: boolean }> = [];
  for (const t of body.tools ?? []) raw.push({ text: JSON.stringify(['tool', stripCC(t)]), breakpoint: t.cache_control != null });
  if (typeof body.system === 'string') raw.push({ text: JSON.stringify(['system', body.system]), breakpoint: false });
  else for (const b of body.system ?? []) raw.push({ text: JSON.stringify(['system', stripCC(b)]), breakpoint: b?.cache_control != null });
  for (const m of body.messages ?? []) {
    for (const b of blocksOf(m.content, 'messages')) {
      raw.push({ text: JSON.stringify([m.role, stripCC(b)]), breakpoint: b?.cache_control != null });
    }
  }
  let prev = '';
  return raw.map((r) => {
    prev = createHash('sha256').update(prev).update('\0').update(r.text).digest('hex');
    return { tokens: tokensOf(r.text), key: prev, breakpoint: r.breakpoint };
  });
}

/**
 * Per-emulator prompt cache. Token counts are length/4 per segment, so
 * input_tokens + cache_read + cache_creation = the whole prompt's tokens.
 * cache_read is the longest prefix, ending at or before the request's last
 * cache_control breakpoint, that ended at a breakpoint of an earlier
 * (answered) request; cache_creation is the rest up to the last breakpoint.
 */
export class PromptCache {
  private readonly keys = new Set<string>();

  usageFor(body: any): { usage: Omit<Usage, 'output_tokens'>; commit: () => void } {
    const segs = segmentsOf(body);
    const total = segs.reduce((n, s) => n + s.tokens, 0);
    let last = -1;
    segs.forEach((s, i) => { if (s.breakpoint) last = i; });
    let read = 0;
    let upToLast = 0;
    for (let i = 0; i <= last; i++) {
      upToLast += segs[i]!.tokens;
      if (this.keys.has(segs[i]!.key)) read = upToLast;
    }
    const commit = () => segs.forEach((s) => { if (s.breakpoint) this.keys.add(s.key); });
    return {
      usage: {
        input_tokens: total - upToLast,
        cache_creation_input_tokens: upToLast - read,
        cache_read_input_tokens: read,
      },
      commit,
    };
  }

  clear(): void {
    this.keys.clear();
  }
}

// -------------------------------------------------------- responses and events

export type ContentOut = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown };

export function contentFor(r: TextReply | ToolUseReply | DisconnectReply | HangReply | StreamErrorReply): ContentOut[] {
  if (r.kind === 'tool_use') {
    const out: ContentOut[] = r.text ? [{ type: 'text', text: r.text }] : [];
    for (const c of r.calls) out.push({ type: 'tool_use', id: c.id ?? newId('toolu_'), name: c.name, input: c.input ?? {} });
    return out;
  }
  const text = 'text' in r && r.text !== undefined ? r.text : 'This reply is cut off before it can fin';
  return [{ type: 'text', text }];
}

export function outputTokens(content: ContentOut[]): number {
  return Math.max(1, content.reduce((n, b) => n + tokensOf(b.type === 'text' ? b.text : JSON.stringify(b.input)), 0));
}

export function stopReasonFor(r: StaticReply, content: ContentOut[]): StopReason {
  if (r.kind === 'text' && r.stopReason) return r.stopReason;
  return content.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
}

export function messageJson(id: string, model: string, content: ContentOut[], stopReason: StopReason | null, usage: Usage): any {
  return {
    id, type: 'message', role: 'assistant', model, content,
    stop_reason: stopReason, stop_sequence: null, stop_details: null, container: null, usage,
  };
}

/** Split `s` into `n` non-empty-ish pieces (fewer when `s` is short). */
export function splitInto(s: string, n: number): string[] {
  const count = Math.max(1, Math.min(n, s.length));
  const size = Math.ceil(s.length / count);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out.length ? out : [''];
}

export interface SseEvent {
  event: string;
  data: unknown;
  /** Wait this long before sending the event. */
  delayMs?: number;
}

/** The full SSE event list for a successful streamed message. */
export function streamEvents(
  r: TextReply | ToolUseReply | DisconnectReply | HangReply | StreamErrorReply,
  id: string, model: string, content: ContentOut[], stopReason: StopReason, usage: Usage,
): SseEvent[] {
  const chunkDelayMs = r.kind === 'text' || r.kind === 'tool_use' ? r.chunkDelayMs : undefined;
  const ev: SseEvent[] = [
    { event: 'message_start', data: { type: 'message_start', message: messageJson(id, model, [], null, { ...usage, output_tokens: 1 }) } },
    { event: 'ping', data: { type: 'ping' } },
  ];
  content.forEach((block, index) => {
    if (block.type === 'text') {
      ev.push({ event: 'content_block_start', data: { type: 'content_block_start', index, content_block: { type: 'text', text: '' } } });
      const chunks = r.kind === 'text' && Array.isArray(r.chunks) ? r.chunks
        : splitInto(block.text, r.kind === 'text' && typeof r.chunks === 'number' ? r.chunks : 3);
      chunks.forEach((text, i) => ev.push({
        event: 'content_block_delta', data: { type: 'content_block_delta', index, delta: { type: 'text_delta', text } },
        ...(i > 0 && chunkDelayMs ? { delayMs: chunkDelayMs } : {}),
      }));
    } else {
      ev.push({ event: 'content_block_start', data: { type: 'content_block_start', index, content_block: { ...block, input: {} } } });
      const json = JSON.stringify(block.input);
      const parts = ['', ...splitInto(json, r.kind === 'tool_use' && r.jsonChunks ? r.jsonChunks : 3)];
      parts.forEach((partial_json, i) => ev.push({
        event: 'content_block_delta', data: { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } },
        ...(i > 1 && chunkDelayMs ? { delayMs: chunkDelayMs } : {}),
      }));
    }
    ev.push({ event: 'content_block_stop', data: { type: 'content_block_stop', index } });
  });
  ev.push({
    event: 'message_delta',
    data: { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null, stop_details: null, container: null }, usage },
  });
  ev.push({ event: 'message_stop', data: { type: 'message_stop' } });
  return ev;
}

export function sseFrame(e: { event: string; data: unknown }): string {
  return `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
}
