import type { z } from 'zod';

/** Who sends the message. */
export type Direction = 'clientToDaemon' | 'daemonToClient';
/**
 * How the daemon schedules the work: `session` methods change one session (they carry
 * a `sessionId`) and run one at a time on that session's queue, so sessions never
 * block one another; `global` ones (including reads and interrupts, which must never
 * wait behind a session's queue) run at once.
 */
export type Scope = 'global' | 'session';

export interface RequestDefinition<M extends string, P extends z.ZodType, R extends z.ZodType> {
  readonly kind: 'request';
  readonly method: M;
  readonly direction: Direction;
  readonly scope: Scope;
  readonly description: string;
  readonly params: P;
  readonly result: R;
}

export interface NotificationDefinition<M extends string, P extends z.ZodType> {
  readonly kind: 'notification';
  readonly method: M;
  readonly direction: Direction;
  readonly scope: Scope;
  readonly description: string;
  readonly params: P;
}

type RequestFields<P extends z.ZodType, R extends z.ZodType> = Pick<RequestDefinition<string, P, R>, 'scope' | 'description' | 'params' | 'result'>;
type NotificationFields<P extends z.ZodType> = Pick<NotificationDefinition<string, P>, 'scope' | 'description' | 'params'>;

/**
 * One message, as one constant: callers and handlers pass the definition, never a
 * method string. The helper's name says who sends it.
 */
export function clientRequest<M extends string, P extends z.ZodType, R extends z.ZodType>(method: M, fields: RequestFields<P, R>): RequestDefinition<M, P, R> {
  return { ...fields, kind: 'request', method, direction: 'clientToDaemon' };
}

export function daemonRequest<M extends string, P extends z.ZodType, R extends z.ZodType>(method: M, fields: RequestFields<P, R>): RequestDefinition<M, P, R> {
  return { ...fields, kind: 'request', method, direction: 'daemonToClient' };
}

export function daemonNotification<M extends string, P extends z.ZodType>(method: M, fields: NotificationFields<P>): NotificationDefinition<M, P> {
  return { ...fields, kind: 'notification', method, direction: 'daemonToClient' };
}

/** Params of a request or notification definition, as a handler receives them. */
export type ParamsOf<D> = D extends { params: infer P extends z.ZodType } ? z.output<P> : never;
/** Result of a request definition, as a handler returns it. */
export type ResultOf<D> = D extends { result: infer R extends z.ZodType } ? z.output<R> : never;
