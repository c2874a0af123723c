import { ResponseError } from 'vscode-jsonrpc/node';
import type { z } from 'zod';
import { AgentdError, ErrorCode } from '../protocol/index.js';
import { LogError } from './log/session-log.js';

/** Maps the log's failures onto protocol error codes; other errors pass through. */
export function fromLogError(error: unknown, sessionId?: string): unknown {
  if (!(error instanceof LogError)) return error;
  switch (error.kind) {
    case 'not_found':
      return new AgentdError(ErrorCode.SessionNotFound, `unknown session ${sessionId ?? ''}`.trim(), { sessionId });
    case 'storage':
      return new AgentdError(ErrorCode.StorageFailure, `storage failure, nothing was acknowledged: ${error.message}`);
    case 'closed':
      return new AgentdError(ErrorCode.DaemonStopping, 'the daemon is stopping');
    case 'invalid':
      return new AgentdError(ErrorCode.InvalidParams, error.message);
    case 'exists':
    case 'fenced':
    case 'conflict':
      return new AgentdError(ErrorCode.InternalError, error.message);
  }
}

/** A zod failure as -32602 naming the path of each bad field. */
export function invalidParams(method: string, error: z.ZodError): AgentdError {
  const issues = error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(params)',
    message: issue.message,
  }));
  const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new AgentdError(ErrorCode.InvalidParams, `invalid params for ${method}: ${summary}`, { issues });
}

/** What goes on the wire: our errors keep their code; anything else is -32603 without internals. */
export function toResponseError(error: unknown): ResponseError<unknown> {
  if (error instanceof ResponseError) return error;
  if (error instanceof AgentdError) return new ResponseError(error.code, error.message, error.data);
  const mapped = fromLogError(error);
  if (mapped instanceof AgentdError) return new ResponseError(mapped.code, mapped.message, mapped.data);
  return new ResponseError(ErrorCode.InternalError, `internal error: ${(error as Error)?.message ?? String(error)}`);
}
