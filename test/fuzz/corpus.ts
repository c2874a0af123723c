/**
 * Hostile inputs for the daemon's socket, replayed on every test run (test/fuzz.test.ts)
 * over the socket and through `agentd stdio`, and by bench/abuse.ts. Every input that
 * ever crashed or bloated the daemon is here, added before its fix.
 *
 * A case sends bytes and says what must come back: an error with an exact code (and
 * id), nothing at all (a notification or a response never gets a reply), or an error
 * after which the daemon hangs up (the stream cannot be trusted any more).
 */
import { ErrorCode, PROTOCOL_VERSION } from '../../protocol/index.js';

export type Expect =
  /** One error reply with this code, for this id (null when the id was unusable). */
  | { code: number; id: string | number | null }
  /** A result (the input was odd but valid). */
  | { result: true; id: string | number }
  /** No reply at all: the daemon dropped it and carries on. */
  | 'silence'
  /** One error reply (id null), then the daemon closes the connection. */
  | { code: number; closes: true }
  /** No reply; the daemon closes the connection (LSP's `exit`). */
  | 'closes';

export interface CorpusCase {
  name: string;
  /** `fresh`: on a new connection (before initialize); `ready`: after initialize. */
  phase: 'fresh' | 'ready';
  /** The bytes to send, header included (built lazily: some are large). */
  bytes: () => Buffer;
  /** Written one byte per write, to exercise reassembly. */
  oneByteAtATime?: boolean;
  expect: Expect;
}

/** One LSP frame around a body. */
export function frame(body: string | Buffer): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return Buffer.concat([Buffer.from(`Content-Length: ${bytes.length}\r\n\r\n`), bytes]);
}

const json = (value: unknown) => () => frame(JSON.stringify(value));
const text = (body: string) => () => frame(body);
const raw = (bytes: string) => () => Buffer.from(bytes);
const req = (id: unknown, method: string, params?: unknown) => ({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) });
const note = (method: string, params?: unknown) => ({ jsonrpc: '2.0', method, ...(params !== undefined ? { params } : {}) });
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const big = (chars: number) => 'x'.repeat(chars);
const SESSION = 's_0000000000nosuchsess';

export const INITIALIZE = req('init', 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'fuzz' } });

/** Framing: headers, bodies that are not JSON, sizes at the frame level. */
const framing: CorpusCase[] = [
  { name: 'no Content-Length header', phase: 'fresh', bytes: raw('Content-Type: x\r\n\r\n{}'), expect: { code: ErrorCode.ParseError, closes: true } },
  { name: 'negative Content-Length', phase: 'fresh', bytes: raw('Content-Length: -1\r\n\r\n{}'), expect: { code: ErrorCode.ParseError, closes: true } },
  { name: 'Content-Length that is not a number', phase: 'fresh', bytes: raw('Content-Length: abc\r\n\r\n{}'), expect: { code: ErrorCode.ParseError, closes: true } },
  { name: 'Content-Length in exponent notation', phase: 'fresh', bytes: raw('Content-Length: 2e0\r\n\r\n{}'), expect: { code: ErrorCode.ParseError, closes: true } },
  { name: 'two different Content-Length headers', phase: 'fresh', bytes: raw('Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}'), expect: { code: ErrorCode.ParseError, closes: true } },
  { name: 'Content-Length past the frame limit', phase: 'fresh', bytes: raw('Content-Length: 99999999999\r\n\r\n'), expect: { code: ErrorCode.MessageTooLarge, closes: true } },
  { name: 'a 17 MiB frame', phase: 'ready', bytes: () => frame(Buffer.alloc(17 * 1024 * 1024, 0x20)), expect: { code: ErrorCode.MessageTooLarge, closes: true } },
  { name: 'a header block that never ends', phase: 'fresh', bytes: () => Buffer.from(`X-Pad: ${big(9000)}`), expect: { code: ErrorCode.ParseError, closes: true } },
  { name: 'an empty body', phase: 'fresh', bytes: text(''), expect: { code: ErrorCode.ParseError, id: null } },
  { name: 'a truncated JSON body', phase: 'fresh', bytes: text('{"jsonrpc":"2.0","id":1,"method":'), expect: { code: ErrorCode.ParseError, id: null } },
  { name: 'a byte-order mark before the JSON', phase: 'ready', bytes: text('\ufeff{"jsonrpc":"2.0","id":1,"method":"daemon/status"}'), expect: { code: ErrorCode.ParseError, id: null } },
  { name: 'bytes that are not UTF-8', phase: 'ready', bytes: () => frame(Buffer.from([0xff, 0xfe, 0x80, 0x7b])), expect: { code: ErrorCode.ParseError, id: null } },
  { name: 'a JSON null', phase: 'fresh', bytes: text('null'), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a JSON number', phase: 'fresh', bytes: text('42'), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a JSON string', phase: 'fresh', bytes: text('"initialize"'), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'an empty batch', phase: 'ready', bytes: text('[]'), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a batch of one request', phase: 'ready', bytes: json([req(1, 'daemon/status')]), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'arrays nested 100000 deep', phase: 'ready', bytes: text(nested(100_000)), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request split into one-byte writes', phase: 'ready', bytes: json(req('split', 'daemon/status')), oneByteAtATime: true, expect: { result: true, id: 'split' } },
];

/** The envelope: jsonrpc, method and id shapes. */
const envelope: CorpusCase[] = [
  { name: 'jsonrpc missing', phase: 'ready', bytes: json({ id: 1, method: 'daemon/status' }), expect: { code: ErrorCode.InvalidRequest, id: 1 } },
  { name: 'jsonrpc "1.0"', phase: 'ready', bytes: json({ jsonrpc: '1.0', id: 2, method: 'daemon/status' }), expect: { code: ErrorCode.InvalidRequest, id: 2 } },
  { name: 'jsonrpc as a number', phase: 'ready', bytes: json({ jsonrpc: 2, id: 3, method: 'daemon/status' }), expect: { code: ErrorCode.InvalidRequest, id: 3 } },
  { name: 'method as a number', phase: 'ready', bytes: json(req(4, 42 as unknown as string)), expect: { code: ErrorCode.InvalidRequest, id: 4 } },
  { name: 'method as null', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: 5, method: null }), expect: { code: ErrorCode.InvalidRequest, id: 5 } },
  { name: 'method as an object', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: 6, method: {} }), expect: { code: ErrorCode.InvalidRequest, id: 6 } },
  { name: 'a request with id null', phase: 'ready', bytes: json(req(null, 'daemon/status')), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request with an object id', phase: 'ready', bytes: json(req({ a: 1 }, 'daemon/status')), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request with an array id', phase: 'ready', bytes: json(req([1], 'daemon/status')), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request with a boolean id', phase: 'ready', bytes: json(req(true, 'daemon/status')), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request with a 300-character id', phase: 'ready', bytes: json(req(big(300), 'daemon/status')), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request id nested 100000 deep', phase: 'ready', bytes: text(`{"jsonrpc":"2.0","method":"daemon/status","id":${nested(100_000)}}`), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a request with id null before initialize', phase: 'fresh', bytes: json(req(null, 'initialize')), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'params as a string', phase: 'ready', bytes: json(req(7, 'daemon/status', 'x')), expect: { code: ErrorCode.InvalidRequest, id: 7 } },
  { name: 'params as null', phase: 'ready', bytes: json(req(8, 'daemon/status', null)), expect: { code: ErrorCode.InvalidRequest, id: 8 } },
  { name: 'params as an array', phase: 'ready', bytes: json(req(9, 'session/get', [SESSION])), expect: { code: ErrorCode.InvalidParams, id: 9 } },
  { name: 'a fractional id', phase: 'ready', bytes: json(req(1.5, 'daemon/status')), expect: { result: true, id: 1.5 } },
  { name: 'method __proto__', phase: 'ready', bytes: json(req(10, '__proto__')), expect: { code: ErrorCode.MethodNotFound, id: 10 } },
  { name: 'method constructor', phase: 'ready', bytes: json(req(11, 'constructor')), expect: { code: ErrorCode.MethodNotFound, id: 11 } },
  { name: 'method toString', phase: 'ready', bytes: json(req(12, 'toString')), expect: { code: ErrorCode.MethodNotFound, id: 12 } },
  { name: 'an rpc.* method', phase: 'ready', bytes: json(req(13, 'rpc.discover')), expect: { code: ErrorCode.MethodNotFound, id: 13 } },
  { name: 'a $/ method as a request', phase: 'ready', bytes: json(req(14, '$/cancelRequest', { id: 1 })), expect: { code: ErrorCode.MethodNotFound, id: 14 } },
  { name: 'a message with neither method nor result', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: 15 }), expect: { code: ErrorCode.InvalidRequest, id: 15 } },
  { name: 'a request before initialize', phase: 'fresh', bytes: json(req(16, 'session/list')), expect: { code: ErrorCode.ServerNotInitialized, id: 16 } },
  { name: '__proto__ inside params', phase: 'ready', bytes: text(`{"jsonrpc":"2.0","id":17,"method":"session/get","params":{"__proto__":{"sessionId":"${SESSION}"}}}`), expect: { code: ErrorCode.InvalidParams, id: 17 } },
];

/** Notifications and responses: never answered, never a crash. */
const notifications: CorpusCase[] = [
  // The 45-byte notification that killed the daemon inside vscode-jsonrpc.
  { name: '$/cancelRequest without params', phase: 'ready', bytes: json(note('$/cancelRequest')), expect: 'silence' },
  { name: '$/cancelRequest without params before initialize', phase: 'fresh', bytes: json(note('$/cancelRequest')), expect: 'silence' },
  { name: '$/cancelRequest with {}', phase: 'ready', bytes: json(note('$/cancelRequest', {})), expect: 'silence' },
  { name: '$/cancelRequest with []', phase: 'ready', bytes: json(note('$/cancelRequest', [])), expect: 'silence' },
  { name: '$/cancelRequest with id null', phase: 'ready', bytes: json(note('$/cancelRequest', { id: null })), expect: 'silence' },
  { name: '$/cancelRequest with an object id', phase: 'ready', bytes: json(note('$/cancelRequest', { id: {} })), expect: 'silence' },
  { name: '$/cancelRequest with an array id', phase: 'fresh', bytes: json(note('$/cancelRequest', { id: [1] })), expect: 'silence' },
  { name: '$/cancelRequest of a request that does not exist', phase: 'ready', bytes: json(note('$/cancelRequest', { id: 424242 })), expect: 'silence' },
  { name: '$/progress without params', phase: 'ready', bytes: json(note('$/progress')), expect: 'silence' },
  { name: '$/progress with a bad token', phase: 'ready', bytes: json(note('$/progress', { token: {}, value: 1 })), expect: 'silence' },
  { name: '$/setTrace with junk', phase: 'ready', bytes: json(note('$/setTrace', { value: { deep: [1] } })), expect: 'silence' },
  { name: '$/logTrace without params', phase: 'ready', bytes: json(note('$/logTrace')), expect: 'silence' },
  { name: 'exit', phase: 'ready', bytes: json(note('exit')), expect: 'closes' },
  { name: 'exit before initialize', phase: 'fresh', bytes: json(note('exit')), expect: 'closes' },
  { name: 'exit with params null', phase: 'ready', bytes: json({ jsonrpc: '2.0', method: 'exit', params: null }), expect: 'closes' },
  { name: 'an unknown notification', phase: 'ready', bytes: json(note('no/such', { a: 1 })), expect: 'silence' },
  { name: 'initialize as a notification', phase: 'fresh', bytes: json(note('initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'x' } })), expect: 'silence' },
  { name: 'daemon/stop as a notification', phase: 'ready', bytes: json(note('daemon/stop')), expect: 'silence' },
  { name: 'a notification with params as a number', phase: 'ready', bytes: json(note('$/cancelRequest', 5)), expect: { code: ErrorCode.InvalidRequest, id: null } },
  { name: 'a response nobody asked for', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: 99, result: {} }), expect: 'silence' },
  { name: 'a response with id null', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: null, error: { code: 1, message: 'x' } }), expect: 'silence' },
  { name: 'a response with an object id', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: {}, result: 1 }), expect: 'silence' },
  { name: 'a response whose error is a string', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: 98, error: 'boom' }), expect: 'silence' },
  { name: 'a response with both result and error', phase: 'ready', bytes: json({ jsonrpc: '2.0', id: 97, result: 1, error: { code: 1, message: 'x' } }), expect: 'silence' },
];

/** Sizes and nesting inside valid-looking params: caps on what is stored. */
const sizes: CorpusCase[] = [
  { name: 'a 15 MB system prompt', phase: 'ready', bytes: json(req(20, 'session/create', { workspace: '/tmp', system: big(15_000_000) })), expect: { code: ErrorCode.InvalidParams, id: 20 } },
  { name: 'a system prompt one character over the cap', phase: 'ready', bytes: json(req(21, 'session/create', { workspace: '/tmp', system: big(256 * 1024 + 1) })), expect: { code: ErrorCode.InvalidParams, id: 21 } },
  { name: 'a 201-character title', phase: 'ready', bytes: json(req(22, 'session/create', { workspace: '/tmp', title: big(201) })), expect: { code: ErrorCode.InvalidParams, id: 22 } },
  { name: 'a 5000-character workspace path', phase: 'ready', bytes: json(req(23, 'session/create', { workspace: `/${big(5000)}` })), expect: { code: ErrorCode.InvalidParams, id: 23 } },
  { name: 'a 1000-character model name', phase: 'ready', bytes: json(req(24, 'session/create', { workspace: '/tmp', model: big(1000) })), expect: { code: ErrorCode.InvalidParams, id: 24 } },
  { name: '100000 tool names', phase: 'ready', bytes: json(req(25, 'session/create', { workspace: '/tmp', tools: Array(100_000).fill('bash') })), expect: { code: ErrorCode.InvalidParams, id: 25 } },
  { name: '10000 credentials', phase: 'ready', bytes: json(req(26, 'session/create', { workspace: '/tmp', credentials: Array(10_000).fill('A') })), expect: { code: ErrorCode.InvalidParams, id: 26 } },
  { name: '1000 MCP servers', phase: 'ready', bytes: json(req(27, 'session/create', { workspace: '/tmp', mcpServers: Array.from({ length: 1000 }, (_, i) => ({ name: `s${i}`, command: 'x' })) })), expect: { code: ErrorCode.InvalidParams, id: 27 } },
  { name: 'an MCP server with 10000 args', phase: 'ready', bytes: json(req(28, 'session/create', { workspace: '/tmp', mcpServers: [{ name: 's', command: 'x', args: Array(10_000).fill('a') }] })), expect: { code: ErrorCode.InvalidParams, id: 28 } },
  { name: '1000 allow patterns', phase: 'ready', bytes: json(req(29, 'session/create', { workspace: '/tmp', permissions: { default: 'ask', allow: Array(1000).fill('bash') } })), expect: { code: ErrorCode.InvalidParams, id: 29 } },
  { name: 'a 2 MiB prompt', phase: 'ready', bytes: json(req(30, 'session/prompt', { sessionId: SESSION, content: big(2 * 1024 * 1024) })), expect: { code: ErrorCode.InvalidParams, id: 30 } },
  { name: '1000 content blocks in a prompt', phase: 'ready', bytes: json(req(31, 'session/prompt', { sessionId: SESSION, content: Array(1000).fill({ type: 'text', text: 'x' }) })), expect: { code: ErrorCode.InvalidParams, id: 31 } },
  { name: '10000 event types in a read', phase: 'ready', bytes: json(req(32, 'session/events', { sessionId: SESSION, types: Array(10_000).fill('x') })), expect: { code: ErrorCode.InvalidParams, id: 32 } },
  { name: 'a 1 MiB client name', phase: 'fresh', bytes: json(req(33, 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: big(1024 * 1024) } })), expect: { code: ErrorCode.InvalidParams, id: 33 } },
  { name: 'a 100 KB subscription id', phase: 'ready', bytes: json(req(34, 'session/unsubscribe', { subscriptionId: big(100_000) })), expect: { code: ErrorCode.InvalidParams, id: 34 } },
  { name: 'a 100 KB list cursor', phase: 'ready', bytes: json(req(35, 'session/list', { cursor: big(100_000) })), expect: { code: ErrorCode.InvalidParams, id: 35 } },
  { name: 'a vault value over 64 KiB', phase: 'ready', bytes: json(req(36, 'vault/set', { name: 'BIG', value: big(65537) })), expect: { code: ErrorCode.InvalidParams, id: 36 } },
  { name: 'params nested 100000 deep', phase: 'ready', bytes: text(`{"jsonrpc":"2.0","id":37,"method":"session/create","params":{"workspace":"/tmp","sandbox":${nested(100_000)}}}`), expect: { code: ErrorCode.InvalidParams, id: 37 } },
  { name: 'an unknown field nested 100000 deep', phase: 'ready', bytes: text(`{"jsonrpc":"2.0","id":38,"method":"session/get","params":{"sessionId":"${SESSION}","junk":${nested(100_000)}}}`), expect: { code: ErrorCode.SessionNotFound, id: 38 } },
  { name: 'a tool input nested 100000 deep in a prompt', phase: 'ready', bytes: text(`{"jsonrpc":"2.0","id":39,"method":"session/prompt","params":{"sessionId":"${SESSION}","content":[{"type":"text","text":"x","extra":${nested(100_000)}}]}}`), expect: { code: ErrorCode.SessionNotFound, id: 39 } },
];

/** Wrong types for one field of one method, where the method's own schema cannot be the oracle. */
const types: CorpusCase[] = [
  { name: 'session/create with workspace as a number', phase: 'ready', bytes: json(req(40, 'session/create', { workspace: 1 })), expect: { code: ErrorCode.InvalidParams, id: 40 } },
  { name: 'session/events with from as a string', phase: 'ready', bytes: json(req(41, 'session/events', { sessionId: SESSION, from: '0' })), expect: { code: ErrorCode.InvalidParams, id: 41 } },
  { name: 'session/events with a negative limit', phase: 'ready', bytes: json(req(42, 'session/events', { sessionId: SESSION, limit: -1 })), expect: { code: ErrorCode.InvalidParams, id: 42 } },
  { name: 'session/events with waitMs past the cap', phase: 'ready', bytes: json(req(43, 'session/events', { sessionId: SESSION, waitMs: 1e12 })), expect: { code: ErrorCode.InvalidParams, id: 43 } },
  { name: 'session/fork at 2^53', phase: 'ready', bytes: json(req(44, 'session/fork', { sessionId: SESSION, at: 2 ** 53 })), expect: { code: ErrorCode.InvalidParams, id: 44 } },
  { name: 'vault/set with a binding of an unknown kind', phase: 'ready', bytes: json(req(45, 'vault/set', { name: 'X', value: 'abcdefgh', binding: { kind: 'ftp', url: 'ftp://x' } })), expect: { code: ErrorCode.InvalidParams, id: 45 } },
  { name: 'initialize with capabilities as a string', phase: 'fresh', bytes: json(req(46, 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'x' }, capabilities: 'all' })), expect: { code: ErrorCode.InvalidParams, id: 46 } },
  { name: 'shutdown with params as a string', phase: 'ready', bytes: json(req(47, 'shutdown', 'now')), expect: { code: ErrorCode.InvalidRequest, id: 47 } },
  { name: 'session/attach with role as an array', phase: 'ready', bytes: json(req(48, 'session/attach', { sessionId: SESSION, role: ['controller'] })), expect: { code: ErrorCode.InvalidParams, id: 48 } },
];

export const corpus: CorpusCase[] = [...framing, ...envelope, ...notifications, ...sizes, ...types];
