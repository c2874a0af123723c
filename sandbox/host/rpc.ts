/**
 * The host's side of MCP's stdio transport: newline-delimited JSON-RPC 2.0 on stdin and
 * stdout, requests dispatched to a table of handlers, `notifications/cancelled` aborting the
 * request it names. The MCP SDK's server does this too, but loading it costs ajv, two zod
 * versions and about 150 ms per sandbox; the host answers five methods.
 */
import * as z from 'zod/mini';

const Id = z.union([z.string(), z.number()]);
const Message = z.object({ jsonrpc: z.literal('2.0'), id: z.optional(Id), method: z.optional(z.string()), params: z.optional(z.unknown()) });
const Cancelled = z.object({ requestId: Id });

/** A failure answered as a JSON-RPC error with this code. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const INVALID_PARAMS = -32602;
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INTERNAL_ERROR = -32603;

export type Handler = (params: unknown, signal: AbortSignal) => Promise<unknown>;

/** Parses `params` with `schema`, or fails with -32602 naming the field. */
export function parseParams<T>(schema: z.ZodMiniType<T>, params: unknown): T {
  const parsed = z.safeParse(schema, params);
  if (parsed.success) return parsed.data;
  throw new RpcError(INVALID_PARAMS, parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; '));
}

/** Called once no request has been in flight for `ms` (again after each later request). */
export interface QuietSpell {
  ms: number;
  onQuiet(): void;
}

/**
 * Serves `handlers` on this process's stdin and stdout until stdin ends, then calls `onEnd`.
 * Notifications other than cancellation are ignored (`notifications/initialized` among them).
 */
export function serveStdio(handlers: Readonly<Record<string, Handler>>, onEnd: () => void, quiet?: QuietSpell): void {
  const running = new Map<string | number, AbortController>();
  let quietTimer: NodeJS.Timeout | undefined;
  const send = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
  const fail = (id: string | number | null, code: number, message: string) => send({ id, error: { code, message } });

  const receive = (line: string) => {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      fail(null, PARSE_ERROR, 'not JSON');
      return;
    }
    const parsed = z.safeParse(Message, json);
    if (!parsed.success) return fail(null, INVALID_REQUEST, 'not a JSON-RPC 2.0 message');
    const { id, method, params } = parsed.data;
    if (method === undefined) return; // a response: the host sends no requests
    if (id === undefined) {
      if (method === 'notifications/cancelled') {
        const cancel = z.safeParse(Cancelled, params);
        if (cancel.success) running.get(cancel.data.requestId)?.abort();
      }
      return;
    }
    const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
    if (!handler) return fail(id, METHOD_NOT_FOUND, `unknown method ${method}`);
    const abort = new AbortController();
    running.set(id, abort);
    clearTimeout(quietTimer);
    handler(params, abort.signal).then(
      (result) => send({ id, result }),
      (error: unknown) => (error instanceof RpcError ? fail(id, error.code, error.message) : fail(id, INTERNAL_ERROR, (error as Error).message ?? String(error))),
    ).finally(() => {
      running.delete(id);
      if (quiet && running.size === 0) quietTimer = setTimeout(quiet.onQuiet, quiet.ms).unref();
    });
  };

  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end).replace(/\r$/, '');
      buffered = buffered.slice(end + 1);
      if (line.trim()) receive(line);
    }
  });
  process.stdin.on('end', onEnd);
  process.stdout.on('error', onEnd); // the provider is gone
}
