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
  /** The connection sent `shutdown` and may only close now. */
  ConnectionShutDown: -33006,
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
  /** `permission/answer` names a question that is not open: answered already, withdrawn, or never asked. */
  QuestionNotOpen: -33013,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

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
