import type Anthropic from '@anthropic-ai/sdk';
import { setTimeout as delay } from 'node:timers/promises';
import type { ContentBlock, Usage } from '../../protocol/index.js';
import { requestBody, type ModelRequest } from './context.js';

export interface ModelReply {
  content: ContentBlock[];
  stopReason: string | null;
  usage: Usage;
}

export interface ModelCallHooks {
  /** Before each attempt (the harness records model.requested). */
  onAttempt(attempt: number): Promise<void>;
  /** Before waiting to retry (the harness records model.retry). */
  onRetry(attempt: number, reason: string, delayMs: number): Promise<void>;
  /** Streaming fragments; ephemeral. */
  onDelta(kind: 'text' | 'tool_input', index: number, text: string): void;
}

export interface RetryPolicy {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

/** A model call that will not succeed by retrying; `message` is fit for turn.failed. */
export class ModelFailure extends Error {}

/** The call was aborted (interrupt or shutdown). */
export class ModelAborted extends Error {}

type Sdk = typeof Anthropic;
let sdk: Promise<Sdk> | undefined;

/**
 * The SDK, loaded on the first model call: it is the daemon's heaviest import (about
 * 120 ms and 16 MB), and a daemon that only serves logs never needs it.
 */
export function anthropicSdk(): Promise<Sdk> {
  sdk ??= import('@anthropic-ai/sdk').then((m) => m.default);
  return sdk;
}

function isRetryable(Anthropic: Sdk, error: unknown): boolean {
  if (error instanceof Anthropic.APIUserAbortError) return false;
  if (error instanceof Anthropic.APIConnectionError) return true;
  if (error instanceof Anthropic.APIError) {
    const status = error.status;
    // No status: an error event inside the stream (overloaded mid-stream, and the like).
    return status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
  }
  // A stream cut off mid-way surfaces as a plain error from the SSE reader.
  return error instanceof Error;
}

function describe(Anthropic: Sdk, error: unknown): string {
  if (error instanceof Anthropic.APIError && error.status !== undefined) return `${error.status} ${error.message}`;
  return (error as Error)?.message ?? String(error);
}

/** retry-after in ms when the API sent one. */
function retryAfterMs(Anthropic: Sdk, error: unknown): number | undefined {
  if (!(error instanceof Anthropic.APIError) || !error.headers) return undefined;
  const raw = error.headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function backoff(Anthropic: Sdk, policy: RetryPolicy, attempt: number, error: unknown): number {
  const told = retryAfterMs(Anthropic, error);
  if (told !== undefined) return Math.min(told, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2)); // jitter: spread retries of many sessions
}

function toContent(blocks: Anthropic.ContentBlock[]): ContentBlock[] {
  const out: ContentBlock[] = [];
  for (const block of blocks) {
    if (block.type === 'text') out.push({ type: 'text', text: block.text });
    else if (block.type === 'tool_use') out.push({ type: 'tool_use', id: block.id, name: block.name, input: (block.input ?? {}) as Record<string, unknown> });
  }
  return out;
}

/**
 * One model call, streamed, retried on 429/5xx/529/dropped connections with backoff
 * and jitter (retry-after honoured); fails fast on a rejected key or a bad request.
 */
export async function callModel(
  client: Anthropic,
  request: ModelRequest,
  hooks: ModelCallHooks,
  signal: AbortSignal,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<ModelReply> {
  const Anthropic = await anthropicSdk();
  // The body goes out as the bytes made once for this request (requestBody): the SDK would
  // serialize the whole context again, and walk its messages for telemetry, on every call.
  // Its params then carry only what it reads itself.
  const body = requestBody(request);
  const params: Anthropic.MessageStreamParams = { model: request.model, max_tokens: request.max_tokens, messages: [] };
  const options = { signal, body, headers: { 'content-type': 'application/json' } };
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw new ModelAborted('aborted');
    await hooks.onAttempt(attempt);
    try {
      const stream = client.messages.stream(params, options);
      stream.on('streamEvent', (event) => {
        if (event.type !== 'content_block_delta') return;
        if (event.delta.type === 'text_delta') hooks.onDelta('text', event.index, event.delta.text);
        else if (event.delta.type === 'input_json_delta') hooks.onDelta('tool_input', event.index, event.delta.partial_json);
      });
      const message = await stream.finalMessage();
      const u = message.usage;
      return {
        content: toContent(message.content),
        stopReason: message.stop_reason,
        usage: {
          inputTokens: u.input_tokens,
          outputTokens: u.output_tokens,
          cacheReadTokens: u.cache_read_input_tokens ?? 0,
          cacheWriteTokens: u.cache_creation_input_tokens ?? 0,
        },
      };
    } catch (error) {
      if (signal.aborted || error instanceof Anthropic.APIUserAbortError) throw new ModelAborted('aborted');
      if (error instanceof Anthropic.AuthenticationError) {
        throw new ModelFailure(`the model API rejected the API key (${describe(Anthropic, error)}); set a valid ANTHROPIC_API_KEY`);
      }
      if (!isRetryable(Anthropic, error)) throw new ModelFailure(`the model API refused the request: ${describe(Anthropic, error)}`);
      if (attempt > policy.maxRetries) throw new ModelFailure(`the model API failed after ${attempt} attempts: ${describe(Anthropic, error)}`);
      const delayMs = backoff(Anthropic, policy, attempt, error);
      await hooks.onRetry(attempt, describe(Anthropic, error), delayMs);
      await delay(delayMs, undefined, { signal }).catch(() => Promise.reject(new ModelAborted('aborted')));
    }
  }
}
