// A local HTTP server speaking the Anthropic Messages API (POST /v1/messages,
// streaming and not), scriptable per test. Point the real SDK at `emulator.url`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  PromptCache, RequestInvalid, contentFor, errorBody, errorTypeFor, messageJson, newId, outputTokens,
  sseFrame, stopReasonFor, streamEvents, validateRequest,
  type RecordedRequest, type Reply, type StaticReply, type SseEvent,
} from './model-emulator-protocol.js';

export * from './model-emulator-protocol.js';

export interface ModelEmulatorOptions {
  /** When set, requests must present exactly this key (x-api-key or Authorization: Bearer); otherwise any non-empty key is accepted. */
  apiKey?: string;
  /** Reply used when the script queue is empty. Default: a short text echoing the last user text. */
  defaultReply?: Reply;
  /** Require the `anthropic-version` header, as the API does (default true). */
  requireVersionHeader?: boolean;
}

export interface ModelEmulator {
  /** Base URL for the SDK's `baseURL` (no trailing slash, no /v1). */
  readonly url: string;
  /** Every request received, in arrival order (including rejected ones). */
  readonly requests: RecordedRequest[];
  /** Requests received and not yet finished (answered, disconnected or abandoned by the client). */
  readonly inFlight: number;
  /** SSE responses whose headers are sent and which have not ended. */
  readonly openStreams: number;
  /** Failures inside the emulator, e.g. a reply function that threw (the client got a 500). */
  readonly errors: Error[];
  /** Scripted replies not yet consumed. */
  readonly pending: number;
  /** Replace the script queue. */
  script(replies: Reply[]): void;
  /** Append to the script queue. */
  enqueue(...replies: Reply[]): void;
  /** Forget everything the prompt cache has seen. */
  clearCache(): void;
  /** Resolve once at least `n` requests (in total) were received; returns them. */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Resolve once `predicate()` holds; re-checked on every state change. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Last plain text the user sent (ignoring tool results), or '' if none. */
export function lastUserText(body: any): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    const texts = (Array.isArray(m.content) ? m.content : []).filter((b: any) => b?.type === 'text').map((b: any) => b.text);
    if (texts.length) return texts.join('\n');
  }
  return '';
}

const echoReply: Reply = (req) => ({ kind: 'text', text: `echo: ${lastUserText(req.body) || 'ok'}` });

export async function startModelEmulator(options: ModelEmulatorOptions = {}): Promise<ModelEmulator> {
  const requests: RecordedRequest[] = [];
  const errors: Error[] = [];
  const queue: Reply[] = [];
  const cache = new PromptCache();
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let inFlight = 0;
  let openStreams = 0;
  let closed = false;

  const changed = () => { for (const w of [...waiters]) w(); };

  const waitFor = (predicate: () => boolean, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      if (predicate()) return resolve();
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`model emulator: condition not met within ${timeoutMs}ms`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });

  const server = createServer((req, res) => {
    void handle(req, res).catch((err) => {
      errors.push(err instanceof Error ? err : new Error(String(err)));
      if (!res.headersSent && !res.destroyed) {
        sendJson(res, 500, errorBody('api_error', `emulator failure: ${String(err)}`, newId('req_')));
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: any;
    let parseError = false;
    try { body = raw ? JSON.parse(raw) : undefined; } catch { parseError = true; }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const record: RecordedRequest = {
      index: requests.length, method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, headers, body, time: Date.now(),
    };
    requests.push(record);
    inFlight++;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      inFlight--;
      changed();
    };
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) {
        if (!record.disconnected && !closed) record.aborted = true;
        abort.abort();
      }
      finish();
    });
    changed();

    const requestId = newId('req_');
    res.setHeader('request-id', requestId);
    const reject = (status: number, message: string) => {
      record.status = status;
      record.replyKind = 'rejected';
      sendJson(res, status, errorBody(errorTypeFor(status), message, requestId));
    };

    const key = headers['x-api-key'] ?? /^Bearer\s+(.+)$/i.exec(headers['authorization'] ?? '')?.[1];
    if (!key) return reject(401, 'x-api-key header is required');
    if (options.apiKey !== undefined && key !== options.apiKey) return reject(401, 'invalid x-api-key');
    if (record.path !== '/v1/messages') return reject(404, `Not found: ${record.path}`);
    if (record.method !== 'POST') return reject(405, `Method ${record.method} not allowed`);
    if (options.requireVersionHeader !== false && !headers['anthropic-version']) {
      return reject(400, 'anthropic-version: header is required');
    }
    if (parseError) return reject(400, 'Request body is not valid JSON');
    try {
      validateRequest(body);
    } catch (e) {
      if (e instanceof RequestInvalid) return reject(400, e.message);
      throw e;
    }

    let r: Reply = queue.length > 0 ? queue.shift()! : (options.defaultReply ?? echoReply);
    changed();
    for (let depth = 0; typeof r === 'function'; depth++) {
      if (depth > 10) throw new Error('reply function nesting too deep');
      r = await r(record);
    }
    const reply: StaticReply = r;
    record.replyKind = reply.kind;
    if (reply.delayMs) await sleep(reply.delayMs, abort.signal);
    if (abort.signal.aborted) return;
    await respond(reply, body, record, res, requestId, abort.signal);
  }

  async function respond(
    r: StaticReply, body: any, record: RecordedRequest, res: ServerResponse, requestId: string, signal: AbortSignal,
  ): Promise<void> {
    const stream = body.stream === true;
    if (r.kind === 'error' || (r.kind === 'stream_error' && !stream)) {
      const status = r.kind === 'error' ? r.status : 529;
      const hdrs: Record<string, string> = { ...(r.kind === 'error' ? r.headers : {}) };
      if (r.kind === 'error' && r.retryAfter !== undefined) hdrs['retry-after'] = String(r.retryAfter);
      for (const [k, v] of Object.entries(hdrs)) res.setHeader(k, v);
      const type = r.errorType ?? errorTypeFor(status);
      record.status = status;
      return sendJson(res, status, errorBody(type, r.message ?? defaultMessage(type), requestId));
    }
    if (r.kind === 'hang' && !(stream && r.afterEvents)) return; // never answer; the client gives up
    if (r.kind === 'disconnect' && !stream) {
      record.disconnected = true;
      res.socket?.destroy();
      return;
    }

    const { usage: inUsage, commit } = cache.usageFor(body);
    const content = contentFor(r);
    const usage = { ...inUsage, output_tokens: outputTokens(content) };
    const stopReason = stopReasonFor(r, content);
    const id = newId('msg_');
    record.status = 200;
    commit();
    if (!stream) return sendJson(res, 200, messageJson(id, body.model, content, stopReason, usage));

    let events: SseEvent[] = streamEvents(r, id, body.model, content, stopReason, usage);
    const cut = r.kind === 'text' || r.kind === 'tool_use' ? undefined : r.afterEvents ?? 4;
    if (cut !== undefined) events = events.slice(0, Math.min(cut, events.length - 1));
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    openStreams++;
    changed();
    const closeStream = () => { openStreams--; changed(); };
    res.once('close', closeStream);
    for (const e of events) {
      if (e.delayMs) await sleep(e.delayMs, signal);
      if (signal.aborted || res.destroyed) return;
      res.write(sseFrame(e));
    }
    if (r.kind === 'hang') return;
    if (r.kind === 'disconnect') {
      // Let the written frames reach the client before cutting the connection.
      await new Promise<void>((resolve) => res.write('', () => resolve()));
      record.disconnected = true;
      res.socket?.destroy();
      return;
    }
    if (r.kind === 'stream_error') {
      const type = r.errorType ?? 'overloaded_error';
      res.write(sseFrame({ event: 'error', data: errorBody(type, r.message ?? defaultMessage(type), requestId) }));
    }
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    errors,
    get inFlight() { return inFlight; },
    get openStreams() { return openStreams; },
    get pending() { return queue.length; },
    script(replies) { queue.splice(0, queue.length, ...replies); },
    enqueue(...replies) { queue.push(...replies); },
    clearCache() { cache.clear(); },
    async waitForRequests(n, timeoutMs) {
      await waitFor(() => requests.length >= n, timeoutMs);
      return requests.slice(0, n);
    },
    waitFor,
    async close() {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await waitFor(() => inFlight === 0 && openStreams === 0, 2000).catch(() => undefined);
    },
  };
}

function defaultMessage(type: string): string {
  switch (type) {
    case 'overloaded_error': return 'Overloaded';
    case 'rate_limit_error': return 'Number of request tokens has exceeded your per-minute rate limit';
    case 'api_error': return 'Internal server error';
    default: return type.replace(/_/g, ' ');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
