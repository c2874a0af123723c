/**
 * The protocol as a table of cases (request → result or error code), run twice:
 * straight over the daemon's socket and through `agentd stdio`, as editors use it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, PROTOCOL_VERSION } from '../protocol/index.js';
import { RawConnection, startDaemon, type TestDaemon } from './support/daemon.js';
import { tempDir } from './support/temp.js';

type Message = Record<string, unknown>;
interface Ctx {
  workspace: string;
  sessionId?: string;
}
interface Case {
  name: string;
  method: string;
  params?: (ctx: Ctx) => unknown;
  /** An error code, or a check of the result. */
  expect: number | ((result: Message, ctx: Ctx) => void);
}

const errorOf = (m: Message) => m.error as { code: number; message: string; data?: { issues?: { path: string }[] } } | undefined;
const init = { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'table' } };

const cases: Case[] = [
  { name: 'a request before initialize', method: 'session/list', expect: ErrorCode.ServerNotInitialized },
  { name: 'an unknown method before initialize', method: 'no/such', expect: ErrorCode.ServerNotInitialized },
  {
    name: 'initialize with another major version',
    method: 'initialize',
    params: () => ({ ...init, protocolVersion: '99.0' }),
    expect: ErrorCode.ProtocolVersionMismatch,
  },
  { name: 'initialize without clientInfo', method: 'initialize', params: () => ({ protocolVersion: PROTOCOL_VERSION }), expect: ErrorCode.InvalidParams },
  {
    name: 'initialize',
    method: 'initialize',
    params: () => init,
    expect: (r) => {
      assert.equal(r.protocolVersion, PROTOCOL_VERSION);
      assert.equal((r.serverInfo as Message).name, 'agentd');
    },
  },
  { name: 'initialize twice', method: 'initialize', params: () => init, expect: ErrorCode.AlreadyInitialized },
  { name: 'an unknown method', method: 'no/such', expect: ErrorCode.MethodNotFound },
  { name: 'create with a relative workspace', method: 'session/create', params: () => ({ workspace: 'rel/dir' }), expect: ErrorCode.InvalidParams },
  { name: 'create with a missing workspace', method: 'session/create', params: () => ({ workspace: '/no/such/dir' }), expect: ErrorCode.InvalidParams },
  {
    name: 'create',
    method: 'session/create',
    params: (c) => ({ workspace: c.workspace, title: 'table' }),
    expect: (r, c) => {
      assert.match(String(r.sessionId), /^s_/);
      c.sessionId = String(r.sessionId);
    },
  },
  { name: 'get an unknown session', method: 'session/get', params: () => ({ sessionId: 's_0000000000unknown000' }), expect: ErrorCode.SessionNotFound },
  { name: 'get with a malformed id', method: 'session/get', params: () => ({ sessionId: 42 }), expect: ErrorCode.InvalidParams },
  {
    name: 'get',
    method: 'session/get',
    params: (c) => ({ sessionId: c.sessionId }),
    expect: (r) => {
      assert.equal(r.status, 'idle');
      assert.equal(r.headSeq, 1);
    },
  },
  { name: 'prompt with empty content', method: 'session/prompt', params: (c) => ({ sessionId: c.sessionId, content: '' }), expect: ErrorCode.InvalidParams },
  {
    name: 'prompt',
    method: 'session/prompt',
    params: (c) => ({ sessionId: c.sessionId, content: 'hello' }),
    expect: (r) => assert.equal(r.seq, 1),
  },
  {
    name: 'events from past the head',
    method: 'session/events',
    params: (c) => ({ sessionId: c.sessionId, from: 50 }),
    expect: (r) => {
      assert.deepEqual(r.events, []);
      // At least the two events above; the harness may already have recorded the turn
      // failing (this daemon has no API key), so the exact head races with it.
      assert.ok(typeof r.headSeq === 'number' && r.headSeq >= 2 && r.headSeq < 50, `headSeq ${String(r.headSeq)}`);
    },
  },
  { name: 'events with limit 0', method: 'session/events', params: (c) => ({ sessionId: c.sessionId, limit: 0 }), expect: ErrorCode.InvalidParams },
  {
    name: 'events by type',
    method: 'session/events',
    params: (c) => ({ sessionId: c.sessionId, types: ['user.message'] }),
    expect: (r) => assert.deepEqual((r.events as Message[]).map((e) => e.seq), [1]),
  },
  { name: 'events of an unknown session', method: 'session/events', params: () => ({ sessionId: 's_0000000000unknown000' }), expect: ErrorCode.SessionNotFound },
  { name: 'unsubscribe an unknown subscription', method: 'session/unsubscribe', params: () => ({ subscriptionId: 'sub_nope' }), expect: ErrorCode.SubscriptionNotFound },
  { name: 'fork past the head', method: 'session/fork', params: (c) => ({ sessionId: c.sessionId, at: 9 }), expect: ErrorCode.InvalidPosition },
  { name: 'attach with a bad role', method: 'session/attach', params: (c) => ({ sessionId: c.sessionId, role: 'king' }), expect: ErrorCode.InvalidParams },
  { name: 'attach as observer', method: 'session/attach', params: (c) => ({ sessionId: c.sessionId, role: 'observer' }), expect: (r) => assert.equal(r.role, 'observer') },
  { name: 'an observer prompting', method: 'session/prompt', params: (c) => ({ sessionId: c.sessionId, content: 'x' }), expect: ErrorCode.NotController },
  { name: 'an observer answering a question', method: 'permission/answer', params: (c) => ({ sessionId: c.sessionId, toolUseId: 'toolu_x', decision: 'allow' }), expect: ErrorCode.NotController },
  { name: 'answer with a bad decision', method: 'permission/answer', params: (c) => ({ sessionId: c.sessionId, toolUseId: 'toolu_x', decision: 'maybe' }), expect: ErrorCode.InvalidParams },
  { name: 'attach as controller', method: 'session/attach', params: (c) => ({ sessionId: c.sessionId, role: 'controller' }), expect: (r) => assert.equal(r.role, 'controller') },
  { name: 'answer a question that is not open', method: 'permission/answer', params: (c) => ({ sessionId: c.sessionId, toolUseId: 'toolu_x', decision: 'allow' }), expect: ErrorCode.QuestionNotOpen },
  { name: 'archive', method: 'session/archive', params: (c) => ({ sessionId: c.sessionId }), expect: (r) => assert.deepEqual(r, {}) },
  { name: 'prompt an archived session', method: 'session/prompt', params: (c) => ({ sessionId: c.sessionId, content: 'x' }), expect: ErrorCode.SessionArchived },
  { name: 'vault/set with a bad name', method: 'vault/set', params: () => ({ name: 'bad name', value: 'v' }), expect: ErrorCode.InvalidParams },
  { name: 'vault/set', method: 'vault/set', params: () => ({ name: 'TOKEN', value: 'table-secret-value' }), expect: (r) => assert.deepEqual(r, {}) },
  {
    name: 'vault/list shows no values',
    method: 'vault/list',
    expect: (r) => {
      assert.deepEqual((r.entries as Message[]).map((e) => e.name), ['TOKEN']);
      assert.doesNotMatch(JSON.stringify(r), /table-secret-value/);
    },
  },
  { name: 'vault/delete an unknown name', method: 'vault/delete', params: () => ({ name: 'NOPE' }), expect: ErrorCode.VaultEntryNotFound },
  { name: 'daemon/status', method: 'daemon/status', expect: (r) => (assert.equal(typeof r.pid, 'number'), assert.equal(r.modelApiKey, 'missing')) },
  { name: 'daemon/stop with a negative timeout', method: 'daemon/stop', params: () => ({ timeoutMs: -1 }), expect: ErrorCode.InvalidParams },
  { name: 'shutdown', method: 'shutdown', expect: (r) => assert.equal(r, null) },
  { name: 'a request after shutdown', method: 'session/list', expect: ErrorCode.InvalidRequest },
];

for (const transport of ['socket', 'stdio'] as const) {
  describe(`protocol over ${transport}`, () => {
    let daemon: TestDaemon;
    const open = () => (transport === 'socket' ? RawConnection.open(daemon.layout.socket) : Promise.resolve(RawConnection.stdio(daemon.layout)));
    before(async () => {
      daemon = await startDaemon();
    });
    after(() => daemon.dispose());

    it('answers each case with its result or error code', async () => {
      const conn = await open();
      const ctx: Ctx = { workspace: tempDir('agentd-ws-') };
      let id = 1;
      for (const c of cases) {
        const reply = await conn.request(id++, c.method, c.params?.(ctx));
        if (typeof c.expect === 'number') {
          assert.equal(errorOf(reply)?.code, c.expect, `${c.name}: ${JSON.stringify(reply)}`);
        } else {
          assert.equal(reply.error, undefined, `${c.name}: ${JSON.stringify(reply)}`);
          c.expect(reply.result as Message, ctx);
        }
      }
      conn.close();
    });

    it('names the bad field of invalid params', async () => {
      const conn = await open();
      await conn.request(1, 'initialize', init);
      const reply = await conn.request(2, 'session/events', { sessionId: 's_0000000000abcdefghij', limit: -3 });
      assert.equal(errorOf(reply)?.code, ErrorCode.InvalidParams);
      assert.deepEqual(errorOf(reply)?.data?.issues?.map((i) => i.path), ['limit']);
      conn.close();
    });

    it('names both versions on a version mismatch', async () => {
      const conn = await open();
      const reply = await conn.request(1, 'initialize', { ...init, protocolVersion: '99.1' });
      assert.match(errorOf(reply)!.message, /99\.1/);
      assert.match(errorOf(reply)!.message, new RegExp(PROTOCOL_VERSION.replace('.', '\\.')));
      conn.close();
    });

    it('answers malformed JSON with -32700 and keeps the connection', async () => {
      const conn = await open();
      conn.sendBytes('{"jsonrpc": "2.0", "id": 1, "method": ');
      const parse = await conn.next((m) => errorOf(m)?.code === ErrorCode.ParseError);
      assert.equal(parse.id, null);
      conn.sendBytes('[1, 2]');
      await conn.next((m) => errorOf(m)?.code === ErrorCode.InvalidRequest);
      conn.send({ id: 7, method: 'session/list' });
      await conn.next((m) => m.id === 7 && errorOf(m)?.code === ErrorCode.ServerNotInitialized);
      const ok = await conn.request(8, 'initialize', init);
      assert.equal(ok.error, undefined);
      conn.close();
    });

    it('cancels a waiting request with -32800', async () => {
      const conn = await open();
      await conn.request(1, 'initialize', init);
      const created = await conn.request(2, 'session/create', { workspace: tempDir('agentd-ws-') });
      const sessionId = (created.result as Message).sessionId;
      conn.send({ id: 3, method: 'session/events', params: { sessionId, from: 1, waitMs: 60000 } });
      conn.send({ method: '$/cancelRequest', params: { id: 3 } });
      const reply = await conn.next((m) => m.id === 3);
      assert.equal(errorOf(reply)?.code, ErrorCode.RequestCancelled);
      conn.close();
    });

    it('closes a connection that sends an oversized frame and stays up for others', async () => {
      const conn = await open();
      await conn.request(1, 'initialize', init);
      conn.sendBytes(Buffer.alloc(17 * 1024 * 1024, 0x20));
      const reply = await conn.next((m) => errorOf(m)?.code === ErrorCode.MessageTooLarge);
      assert.equal(reply.id, null);
      await conn.waitClosed();
      const other = await open();
      const ok = await other.request(1, 'initialize', init);
      assert.equal(ok.error, undefined);
      other.close();
    });
  });
}
