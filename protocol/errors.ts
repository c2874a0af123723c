/**
 * Stable error codes. Clients match on the number, never on the message text.
 * JSON-RPC and LSP reserve -32768..-32000; ours live in -33099..-33000.
 */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** LSP: a request other than `initialize` arrived before it. */
  ServerNotInitialized: -32002,
  /** LSP: the client cancelled the request with `$/cancelRequest`. */
  RequestCancelled: -32800,

  SessionNotFound: -33001,
  ProtocolVersionMismatch: -33002,
  /** The session is archived; it can be read but not changed. */
  SessionArchived: -33003,
  /** The data directory cannot be written (permissions, full disk): nothing was acknowledged. */
  StorageFailure: -33004,
  /** A frame larger than the daemon accepts; the connection is closed after this error. */
  MessageTooLarge: -33005,
  /** The daemon is stopping and takes no new work. */
  DaemonStopping: -33007,
  /**
   * The connection is not a controller of the session: it attached as an observer, or
   * it never created, attached to (as controller) or prompted the session. Refused to
   * an observer: prompt, interrupt, archive; refused to any non-controller: answering
   * the session's permission questions (`permission/answer`). A client asked a question
   * about a session it does not drive answers `permission/request` with this code too.
   */
  NotController: -33008,
  SubscriptionNotFound: -33009,
  /** `initialize` sent twice on one connection. */
  AlreadyInitialized: -33010,
  VaultEntryNotFound: -33011,
  /** The request names a position or range the session does not have. */
  InvalidPosition: -33012,
  /**
   * A per-connection or per-daemon limit was reached (requests in flight, subscriptions,
   * vault entries, the sandbox limits a session asks for); `data.limit` names it and
   * `data.max` gives its value. Nothing was done.
   */
  LimitExceeded: -33013,
  /** `permission/answer` names a question that is not open: answered already, withdrawn, or never asked. */
  QuestionNotOpen: -33014,
  /** The session asks for weaker sandbox isolation than the daemon's floor (`agentd daemon --isolation-floor`). */
  IsolationBelowFloor: -33015,
  /** The workspace may not be used: the data dir or inside it, `/`, or a system directory. */
  WorkspaceForbidden: -33016,
  /** A fork's copy of the workspace would be larger than the daemon allows, or than the free space. */
  WorkspaceTooLarge: -33017,
  /**
   * The connection's access token does not allow this method: an observer token reads
   * and follows only; a session-scoped token may not create or fork sessions or touch the
   * vault; tokens and daemon/stop are for the local socket only. Nothing was done.
   */
  TokenForbids: -33018,
  /** The session is not one the connection's token is scoped to (said whether it exists or not). */
  OutsideTokenScope: -33019,
  /** No valid token: missing, unknown, revoked or expired (HTTP 401 on the WebSocket upgrade and on /login). */
  Unauthenticated: -33020,
  /** A WebSocket upgrade or login from a page of another origin (HTTP 403). */
  OriginRefused: -33021,
  /** `token/revoke` names no valid token. */
  TokenNotFound: -33022,
  /** The session has a turn running or queued: interrupt it or wait (session/delete, session/rollback). -33018 to -33022 are the network listener's (issue 18). */
  SessionBusy: -33023,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

/** What each code means, for docs/design.md; a new code without a meaning does not compile. */
export const ERROR_MEANINGS: Record<ErrorCodeName, string> = {
  ParseError: 'The frame is not valid JSON.',
  InvalidRequest: 'Not a JSON-RPC request, or a request after `shutdown` (as LSP says).',
  MethodNotFound: 'No such method.',
  InvalidParams: "A param is missing or malformed; the message and `data` name the field.",
  InternalError: 'A bug in the daemon; it stays up.',
  ServerNotInitialized: 'A request other than `initialize` came first.',
  RequestCancelled: 'The client cancelled the request with `$/cancelRequest`.',
  SessionNotFound: 'No session has this id.',
  ProtocolVersionMismatch: "The client's major protocol version is not the daemon's.",
  SessionArchived: 'The session is archived: it can be read, not changed.',
  StorageFailure: 'The data cannot be written (permissions, full disk); nothing was acknowledged.',
  MessageTooLarge: 'A frame larger than the daemon accepts; the connection is closed after this error.',
  DaemonStopping: 'The daemon is stopping and takes no new work.',
  NotController:
    'The connection is not a controller of the session (an observer, or it never created, prompted or attached to it as controller): an observer may not prompt, interrupt or archive; only a controller answers its questions.',
  SubscriptionNotFound: 'No subscription of this connection has this id.',
  AlreadyInitialized: '`initialize` was sent twice on one connection.',
  VaultEntryNotFound: 'No credential has this name.',
  InvalidPosition: 'The request names a position or range the session does not have.',
  LimitExceeded: 'A limit of the connection or daemon was reached (requests in flight, subscriptions, vault entries, sandbox limits a session asks for); `data.limit` names it, `data.max` gives it; nothing was done.',
  QuestionNotOpen: '`permission/answer` names a question that is not open: answered already, withdrawn, or never asked.',
  IsolationBelowFloor: "The session asks for weaker sandbox isolation than the daemon's floor (`agentd daemon --isolation-floor`).",
  WorkspaceForbidden: 'The workspace may not be used: the data dir or inside it, `/`, or a system directory.',
  WorkspaceTooLarge: 'A fork would copy more data than the daemon allows (`sandbox.forkMaxBytes`), or than the free space.',
  TokenForbids:
    "The connection's token does not allow this method: an observer token reads and follows only; a session-scoped token may not create or fork sessions or touch the vault; tokens and `daemon/stop` are for the local socket only.",
  OutsideTokenScope: "The session is not one the connection's token is scoped to (said whether it exists or not).",
  Unauthenticated: 'No valid token: missing, unknown, revoked or expired (HTTP 401 on the WebSocket upgrade and on `/login`).',
  OriginRefused: 'A WebSocket upgrade or login from a page of another origin (HTTP 403).',
  TokenNotFound: '`token/revoke` names no valid token.',
  SessionBusy: 'The session has a turn running or queued: interrupt it or wait (refused by session/delete and session/rollback).',
};

/**
 * The one error class of agentd. Everything that reaches a client as a JSON-RPC
 * error is an AgentdError with a stable code; `data` carries machine-readable detail
 * (for invalid params, the path of the bad field).
 */
export class AgentdError extends Error {
  readonly code: ErrorCodeValue;
  readonly data: unknown;

  constructor(code: ErrorCodeValue, message: string, data?: unknown) {
    super(message);
    this.name = 'AgentdError';
    this.code = code;
    this.data = data;
  }

  /** The name of a code, for messages and logs. */
  static codeName(code: number): string {
    for (const [name, value] of Object.entries(ErrorCode)) if (value === code) return name;
    return `Error${code}`;
  }
}
