import type { NotificationMessage, RequestMessage, ResponseMessage } from 'vscode-jsonrpc/node';

export type RequestId = string | number;

/**
 * One parsed message, judged by its envelope before vscode-jsonrpc sees it: the
 * library trusts ids and notification params (a `$/cancelRequest` without params
 * killed the daemon inside it), so only well-formed messages of the kinds the daemon
 * takes reach it.
 */
export type Inbound =
  | { kind: 'request'; message: RequestMessage; id: RequestId }
  /** `$/cancelRequest` with a usable id: the daemon cancels that request itself. */
  | { kind: 'cancel'; id: RequestId }
  /** LSP's `exit`: the client is done with this connection, which the daemon closes. */
  | { kind: 'exit' }
  | { kind: 'response'; message: ResponseMessage; id: RequestId | null }
  /** Not a JSON-RPC message: answered with -32600 (id null when none was usable). */
  | { kind: 'invalid'; reason: string; id: RequestId | null }
  /** A notification the daemon does not take, or a malformed response: dropped, never answered. */
  | { kind: 'ignored'; reason: string };

const LIFECYCLE_VOID = new Set(['shutdown', 'exit']);

/** Longer ids are refused: an id is echoed back and kept while its request runs. */
const MAX_ID_CHARS = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A request id the daemon accepts: a string (bounded) or a number. */
function usableId(id: unknown): id is RequestId {
  return (typeof id === 'string' && id.length <= MAX_ID_CHARS) || (typeof id === 'number' && Number.isFinite(id));
}

function isResponseError(error: unknown): boolean {
  return isRecord(error) && Number.isSafeInteger(error.code) && typeof error.message === 'string';
}

export function classify(value: unknown): Inbound {
  if (Array.isArray(value)) return { kind: 'invalid', reason: 'batch requests are not supported', id: null };
  if (!isRecord(value)) return { kind: 'invalid', reason: 'a message must be a JSON object', id: null };
  const id = usableId(value.id) ? value.id : null;
  if (value.jsonrpc !== '2.0') return { kind: 'invalid', reason: 'jsonrpc must be "2.0"', id };
  if ('method' in value) {
    if (typeof value.method !== 'string') return { kind: 'invalid', reason: 'method must be a string', id };
    // LSP's `shutdown` and `exit` take no params, which clients send as `null` too: taken as none.
    if (value.params === null && LIFECYCLE_VOID.has(value.method)) delete value.params;
    if ('params' in value && (typeof value.params !== 'object' || value.params === null)) {
      return { kind: 'invalid', reason: 'params must be an object or an array', id };
    }
    if ('id' in value) {
      if (id === null) return { kind: 'invalid', reason: `a request id must be a string of at most ${MAX_ID_CHARS} characters or a number`, id: null };
      return { kind: 'request', message: value as unknown as RequestMessage, id };
    }
    return classifyNotification(value as unknown as NotificationMessage);
  }
  if ('result' in value || 'error' in value) {
    const wellFormed = (id !== null || value.id === null) && ('result' in value) !== ('error' in value) && (!('error' in value) || isResponseError(value.error));
    return wellFormed ? { kind: 'response', message: value as unknown as ResponseMessage, id } : { kind: 'ignored', reason: 'malformed response' };
  }
  return { kind: 'invalid', reason: 'not a request, notification or response', id };
}

/** The notifications a client sends the daemon: `$/cancelRequest {id}` and LSP's `exit`. */
function classifyNotification(message: NotificationMessage): Inbound {
  if (message.method === 'exit') return { kind: 'exit' };
  if (message.method !== '$/cancelRequest') return { kind: 'ignored', reason: `notification ${message.method.slice(0, 100)} is not one the daemon takes` };
  const params: unknown = message.params;
  if (!isRecord(params) || !usableId(params.id)) return { kind: 'ignored', reason: '$/cancelRequest without a usable id' };
  return { kind: 'cancel', id: params.id };
}
