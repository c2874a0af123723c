/**
 * The network listener (`agentd daemon --listen` with TLS): the protocol over wss:// with
 * tokens, and every way in that must stay shut, tried for real from a client: no token,
 * a bad, revoked, expired or replayed one, an observer calling every method that changes
 * something, a session-scoped token reaching for other sessions, the web login's cookie
 * from another origin or after logout, an oversized message, too many connections for one
 * token. Each gets its HTTP status or JSON-RPC code, and the daemon stays up throughout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  ClientRequests,
  ErrorCode,
  PROTOCOL_VERSION,
  SessionEvents,
  SessionGet,
  SessionList,
  SessionPrompt,
  type ClientMethod,
  type Event,
} from '../protocol/index.js';
import { reply, startModelEmulator, type ModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { API_KEY, createSession, settle, workspace } from './support/agent.js';
import { runAgentd } from './support/daemon.js';
import { bearer, createToken, httpsJson, openRaw, RawWs, remoteClient, startListeningDaemon, type ListeningDaemon } from './support/remote.js';
import { until } from './support/until.js';

const INIT = { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'remote-test' } };
type Message = Record<string, unknown>;
const codeOf = (m: Message) => (m.error as { code?: number } | undefined)?.code;
const bodyCode = (body: string) => (JSON.parse(body) as { error: { code: number } }).error.code;

async function initialized(daemon: ListeningDaemon, token: string): Promise<RawWs> {
  const ws = await openRaw(daemon, bearer(token));
  const init = await ws.request('initialize', INIT);
  assert.equal(codeOf(init), undefined, JSON.stringify(init));
  return ws;
}

async function refusedStatus(daemon: ListeningDaemon, headers: Record<string, string>): Promise<{ status: number; code: number }> {
  const outcome = await RawWs.open(daemon, headers);
  if ('ws' in outcome) {
    outcome.ws.close();
    throw new Error('the upgrade was accepted');
  }
  return { status: outcome.refused.status, code: bodyCode(outcome.refused.body) };
}

async function alive(daemon: ListeningDaemon): Promise<void> {
  const client = await daemon.client();
  assert.ok((await client.request(SessionList, {})).sessions);
  client.close();
}

describe('network listener over wss://', () => {
  let emulator: ModelEmulator;
  let daemon: ListeningDaemon;
  before(async () => {
    emulator = await startModelEmulator({ apiKey: API_KEY });
    daemon = await startListeningDaemon({
      env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' },
      remote: { maxConnectionsPerToken: 3 },
    });
  });
  after(async () => {
    await daemon?.dispose();
    await emulator?.close();
  });

  it('answers health checks without a token, and nothing else', async () => {
    assert.equal((await httpsJson(`${daemon.origin}/healthz`, { ca: daemon.cert.pem })).status, 200);
    const ready = await httpsJson(`${daemon.origin}/readyz`, { ca: daemon.cert.pem });
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { ready: true, checks: { log: 'ok', leases: 'none' } });
    const me = await httpsJson(`${daemon.origin}/me`, { ca: daemon.cert.pem });
    assert.equal(me.status, 401);
    assert.equal(bodyCode(me.body), ErrorCode.Unauthenticated);
    for (const headers of [{}, bearer('agt_not-a-real-token'), { Authorization: 'Basic dXNlcjpwYXNz' }, bearer(`agt_${'A'.repeat(43)}`)]) {
      assert.deepEqual(await refusedStatus(daemon, headers), { status: 401, code: ErrorCode.Unauthenticated }, JSON.stringify(headers));
    }
    assert.equal((await RawWs.open(daemon, {}, '/elsewhere').then((o) => ('refused' in o ? o.refused.status : 101))), 404);
    await alive(daemon);
  });

  it('lets a controller token drive a session over wss:// as the local socket does', async () => {
    const token = await createToken(daemon.layout, ['--controller', '--name', 'laptop']);
    const client = await remoteClient(daemon, token);
    const sessionId = await createSession(client, { title: 'over the network' });
    emulator.script([reply.text('hello from afar')]);
    const seen: Event[] = [];
    await client.subscribe(sessionId, 0, { onEvents: (events) => seen.push(...events) });
    await client.request(SessionPrompt, { sessionId, content: 'hi' });
    await until(() => seen.some((e) => e.type === 'turn.completed'), 'the turn to complete over wss');
    const local = await daemon.client();
    const logged = await settle(local, sessionId);
    assert.deepEqual(seen.map((e) => e.seq), logged.map((e) => e.seq), 'the remote follower saw every event, in order');
    assert.ok(logged.some((e) => e.type === 'assistant.message' && JSON.stringify(e.data).includes('hello from afar')));
    client.close();
    local.close();
  });

  it('refuses an observer token every method that changes something, with TokenForbids, and lets it read and follow', async () => {
    const local = await daemon.client();
    const sessionId = await createSession(local, { title: 'watched' });
    const token = await createToken(daemon.layout, ['--observer', '--name', 'watcher']);
    const ws = await initialized(daemon, token);
    const params: Record<Exclude<ClientMethod, 'initialize' | 'shutdown'>, unknown> = {
      'session/create': { workspace: workspace() },
      'session/list': {},
      'session/get': { sessionId },
      'session/prompt': { sessionId, content: 'may I?' },
      'session/steer': { sessionId, content: 'this way' },
      'session/interrupt': { sessionId },
      'session/rename': { sessionId, title: 'renamed by an observer' },
      'session/setBudget': { sessionId, budget: { maxTokens: 1_000_000_000 } },
      'session/setNetwork': { sessionId, network: { default: 'allow' } },
      'session/rollback': { sessionId, turns: 1 },
      'session/delete': { sessionId },
      'session/events': { sessionId },
      'session/subscribe': { sessionId },
      'session/unsubscribe': { subscriptionId: 'sub_none' },
      'session/fork': { sessionId, at: 1 },
      'session/attach': { sessionId, role: 'controller' },
      'session/archive': { sessionId },
      'vault/set': { name: 'STOLEN', value: 'not-for-observers' },
      'vault/list': {},
      'vault/delete': { name: 'ANY' },
      'daemon/status': {},
      'daemon/stop': {},
      'permission/answer': { sessionId, toolUseId: 'toolu_x', decision: 'allow' },
      'token/create': { role: 'controller' },
      'token/list': {},
      'token/revoke': { id: 'tok_0000000000000000' },
    };
    // What an observer may do; everything else the protocol has is refused (a new method must be placed here).
    const reads = new Set(['session/list', 'session/get', 'session/events', 'session/subscribe', 'session/unsubscribe', 'daemon/status']);
    for (const method of Object.keys(ClientRequests) as ClientMethod[]) {
      if (method === 'initialize' || method === 'shutdown') continue;
      const answer = await ws.request(method, params[method]);
      if (reads.has(method)) assert.notEqual(codeOf(answer), ErrorCode.TokenForbids, `${method}: ${JSON.stringify(answer)}`);
      else assert.equal(codeOf(answer), ErrorCode.TokenForbids, `${method} must be refused: ${JSON.stringify(answer)}`);
    }
    assert.equal(codeOf(await ws.request('session/attach', { sessionId, role: 'observer' })), undefined);
    // Nothing happened: no prompt in the log, no fork, no vault entry, the daemon still up.
    const events = ((await local.request(SessionEvents, { sessionId })) as { events: Event[] }).events;
    assert.deepEqual(events.map((e) => e.type), ['session.created']);
    assert.equal((await runAgentd(daemon.layout, ['vault', 'list'])).stdout.includes('STOLEN'), false);
    const kept = await local.request(SessionGet, { sessionId });
    assert.equal(kept.status, 'idle');
    assert.equal(kept.title, 'watched', 'not renamed, not deleted');
    ws.close();
    local.close();
  });

  it('shows a session-scoped token its sessions only, whether the others exist or not', async () => {
    const local = await daemon.client();
    const mine = await createSession(local, { title: 'mine' });
    const other = await createSession(local, { title: 'not mine' });
    const token = await createToken(daemon.layout, ['--controller', '--session', mine]);
    const ws = await initialized(daemon, token);
    const listed = (await ws.request('session/list', {})).result as { sessions: Array<{ sessionId: string }> };
    assert.deepEqual(listed.sessions.map((s) => s.sessionId), [mine]);
    const status = (await ws.request('daemon/status', {})).result as { counts: { sessions: number } };
    assert.equal(status.counts.sessions, 1);
    for (const [method, p] of [
      ['session/get', { sessionId: other }],
      ['session/events', { sessionId: other }],
      ['session/subscribe', { sessionId: other }],
      ['session/prompt', { sessionId: other, content: 'x' }],
      ['session/steer', { sessionId: other, content: 'x' }],
      ['session/rename', { sessionId: other, title: 'taken over' }],
      ['session/rollback', { sessionId: other, turns: 1 }],
      ['session/delete', { sessionId: other }],
      ['session/delete', { sessionId: 's_0000000000nosuchsess' }],
      ['session/attach', { sessionId: other, role: 'observer' }],
      ['session/get', { sessionId: 's_0000000000nosuchsess' }],
    ] as const) {
      assert.equal(codeOf(await ws.request(method, p)), ErrorCode.OutsideTokenScope, `${method} ${JSON.stringify(p)}`);
    }
    for (const [method, p] of [
      ['session/create', { workspace: workspace() }],
      ['session/fork', { sessionId: mine, at: 1 }],
      ['vault/list', {}],
      ['token/create', { role: 'observer' }],
      ['daemon/stop', {}],
    ] as const) {
      assert.equal(codeOf(await ws.request(method, p)), ErrorCode.TokenForbids, method);
    }
    // The other session is as it was: not renamed, not deleted, no input in its log.
    const untouched = await local.request(SessionGet, { sessionId: other });
    assert.equal(untouched.title, 'not mine');
    assert.deepEqual(((await local.request(SessionEvents, { sessionId: other })) as { events: Event[] }).events.map((e) => e.type), ['session.created']);
    emulator.script([reply.text('scoped answer')]);
    assert.equal(codeOf(await ws.request('session/prompt', { sessionId: mine, content: 'in scope' })), undefined);
    await settle(local, mine);
    // In scope, a controller token renames, rolls back and deletes its own session.
    assert.equal(codeOf(await ws.request('session/rename', { sessionId: mine, title: 'mine, renamed' })), undefined);
    assert.equal((await local.request(SessionGet, { sessionId: mine })).title, 'mine, renamed');
    assert.equal(codeOf(await ws.request('session/rollback', { sessionId: mine, turns: 1 })), undefined);
    assert.equal(codeOf(await ws.request('session/delete', { sessionId: mine })), undefined);
    assert.equal(codeOf(await ws.request('session/get', { sessionId: mine })), ErrorCode.SessionNotFound, 'deleted');
    ws.close();
    local.close();
  });

  it('refuses revoked and expired tokens (replayed too) with 401, and ends their live connections', async () => {
    const token = await createToken(daemon.layout, ['--controller', '--name', 'to-revoke']);
    const live = await initialized(daemon, token);
    const listed = await runAgentd(daemon.layout, ['token', 'list', '--json']);
    const id = (JSON.parse(listed.stdout) as { tokens: Array<{ id: string; name: string }> }).tokens.find((t) => t.name === 'to-revoke')!.id;
    assert.equal((await runAgentd(daemon.layout, ['token', 'revoke', id])).code, 0);
    assert.deepEqual(await live.waitClosed(), { code: 4001, reason: 'token revoked' });
    assert.deepEqual(await refusedStatus(daemon, bearer(token)), { status: 401, code: ErrorCode.Unauthenticated }, 'a revoked token replayed');
    assert.equal((await runAgentd(daemon.layout, ['token', 'revoke', id])).code, 1, 'revoking twice says there is no such token');

    const brief = await createToken(daemon.layout, ['--observer', '--expires', '2s', '--name', 'brief']);
    const before = await initialized(daemon, brief);
    assert.deepEqual(await before.waitClosed(), { code: 4001, reason: 'token expired' });
    const refused = await until(async () => {
      const outcome = await RawWs.open(daemon, bearer(brief));
      if ('ws' in outcome) outcome.ws.close();
      return 'refused' in outcome ? outcome.refused : undefined;
    }, 'the expired token to be refused');
    assert.equal(refused.status, 401);
    assert.ok(!(await runAgentd(daemon.layout, ['token', 'list'])).stdout.includes('brief'), 'an expired token is not listed');
    await alive(daemon);
  });

  it('exchanges a token once for an HttpOnly, SameSite=Strict session cookie, refused from other origins and after logout', async () => {
    const token = await createToken(daemon.layout, ['--observer', '--name', 'browser']);
    const ca = daemon.cert.pem;
    const own = { Origin: daemon.origin };
    const evil = { Origin: 'https://evil.example' };
    const post = (path: string, headers: Record<string, string>, body = JSON.stringify({ token })) =>
      httpsJson(`${daemon.origin}${path}`, { ca, method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });

    assert.equal((await post('/login', evil)).status, 403, 'login from another site');
    assert.equal((await post('/login', { ...own, 'Content-Type': 'application/x-www-form-urlencoded' }, `token=${token}`)).status, 415, 'a form post');
    assert.equal((await post('/login', own, JSON.stringify({ token: 'agt_wrong' }))).status, 401);
    const login = await post('/login', own);
    assert.equal(login.status, 200);
    assert.ok(!login.body.includes(token), 'the token is not echoed back');
    const setCookie = String(login.headers['set-cookie']);
    assert.match(setCookie, new RegExp(`^__Host-agentd_login_${daemon.port}=agw_[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+; Secure$`));
    const cookie = { Cookie: setCookie.split(';')[0]! };

    const me = await httpsJson(`${daemon.origin}/me`, { ca, headers: { ...cookie, ...own } });
    assert.deepEqual(JSON.parse(me.body), { role: 'observer', tokenName: 'browser' });
    const page = await openRaw(daemon, { ...cookie, ...own });
    assert.equal(codeOf(await page.request('initialize', INIT)), undefined);
    assert.deepEqual(await refusedStatus(daemon, { ...cookie, ...evil }), { status: 403, code: ErrorCode.OriginRefused }, 'cross-site WebSocket hijacking');
    assert.deepEqual(await refusedStatus(daemon, { ...bearer(token), ...evil }), { status: 403, code: ErrorCode.OriginRefused });
    assert.deepEqual(await refusedStatus(daemon, cookie), { status: 401, code: ErrorCode.Unauthenticated }, 'a cookie without an Origin is not a browser page');

    assert.equal((await post('/logout', evil, '')).status, 403);
    assert.equal((await post('/logout', { ...cookie, ...own }, '')).status, 200);
    assert.deepEqual(await page.waitClosed(), { code: 4001, reason: 'token revoked' }, 'logging out ends the page’s connection');
    assert.deepEqual(await refusedStatus(daemon, { ...cookie, ...own }), { status: 401, code: ErrorCode.Unauthenticated }, 'the cookie replayed after logout');
    assert.equal((await httpsJson(`${daemon.origin}/me`, { ca, headers: { ...cookie, ...own } })).status, 401);

    // A second login dies with its token.
    const again = String((await post('/login', own)).headers['set-cookie']).split(';')[0]!;
    const id = (JSON.parse((await runAgentd(daemon.layout, ['token', 'list', '--json'])).stdout) as { tokens: Array<{ id: string; name: string; webLogins: number }> }).tokens.find((t) => t.name === 'browser')!;
    assert.equal(id.webLogins, 1);
    await runAgentd(daemon.layout, ['token', 'revoke', id.id]);
    assert.deepEqual(await refusedStatus(daemon, { Cookie: again, ...own }), { status: 401, code: ErrorCode.Unauthenticated }, 'the cookie replayed after its token was revoked');
  });

  it('closes a connection that sends an oversized message (1009), holds each token to its connection limit, and stays up', async () => {
    const token = await createToken(daemon.layout, ['--observer', '--name', 'limited']);
    const big = await initialized(daemon, token);
    big.ws.send(Buffer.alloc(17 * 1024 * 1024, 0x20));
    assert.equal((await big.waitClosed()).code, 1009);

    const held = [await initialized(daemon, token), await initialized(daemon, token), await initialized(daemon, token)];
    const over = await RawWs.open(daemon, bearer(token));
    assert.ok('refused' in over);
    assert.equal(over.refused.status, 429);
    assert.deepEqual(JSON.parse(over.refused.body).error.data, { limit: 'connectionsPerToken', max: 3 });
    assert.equal(JSON.parse(over.refused.body).error.code, ErrorCode.LimitExceeded);
    // Another token is not held back, and a freed slot is used again.
    const other = await initialized(daemon, await createToken(daemon.layout, ['--observer']));
    held.pop()!.close();
    const reused = await until(async () => {
      const outcome = await RawWs.open(daemon, bearer(token));
      return 'ws' in outcome ? outcome.ws : undefined;
    }, 'a slot to be free again');
    for (const ws of [...held, other, reused]) ws.close();

    // Upgrades with a good token but a malformed WebSocket handshake (ws answers 400)
    // hold no slot: once they are gone, the token still gets its connections.
    const fresh = await createToken(daemon.layout, ['--observer', '--name', 'bad-handshakes']);
    for (let i = 0; i < 4; i++) assert.match(await malformedUpgrade(daemon, fresh), /^HTTP\/1\.1 400 /);
    const full = [await initialized(daemon, fresh), await initialized(daemon, fresh), await initialized(daemon, fresh)];
    for (const ws of full) ws.close();
    await alive(daemon);
  });

  it('refuses plain ws:// off loopback, at the daemon and at the client', async () => {
    const refused = await runAgentd(daemon.layout, ['daemon', '--listen', '0.0.0.0:1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /plain ws:\/\/ is allowed on loopback only, and 0\.0\.0\.0 is not; give --tls-cert and --tls-key/);
    const halfTls = await runAgentd(daemon.layout, ['daemon', '--listen', '127.0.0.1:1', '--tls-cert', daemon.cert.certFile]);
    assert.equal(halfTls.code, 1);
    assert.match(halfTls.stderr, /TLS needs both a certificate and its key/);
    const client = await runAgentd(daemon.layout, ['sessions', '--remote', 'ws://10.1.2.3:9'], { env: { AGENTD_TOKEN: 'agt_x' } });
    assert.equal(client.code, 1);
    assert.match(client.stderr, /ws:\/\/ sends the token in the clear; it is allowed to loopback only/);
    await alive(daemon);
  });
});

/** Resolves when the server closes `socket` (what a slow-loris defence must do). */
function closedByServer(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
  });
}

function tlsTo(daemon: ListeningDaemon): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: daemon.port, ca: daemon.cert.pem, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A WebSocket upgrade request for /rpc written by hand, with `token`, asking for WebSocket `version`. */
const upgradeRequest = (daemon: ListeningDaemon, token: string, version: number) =>
  `GET /rpc HTTP/1.1\r\nHost: 127.0.0.1:${daemon.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Version: ${version}\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${token}\r\n\r\n`;

/** An upgrade request with a valid token and a WebSocket version no one speaks; the status line the daemon answers. */
async function malformedUpgrade(daemon: ListeningDaemon, token: string): Promise<string> {
  const socket = await tlsTo(daemon);
  socket.write(upgradeRequest(daemon, token, 99));
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  await closedByServer(socket);
  return answer.split('\r\n')[0]!;
}

describe('slow-loris connections over wss://', () => {
  let daemon: ListeningDaemon;
  before(async () => {
    // Short deadlines, so that the attacks end within the test.
    daemon = await startListeningDaemon({ remote: { handshakeTimeoutMs: 300, pingIntervalMs: 500 } });
  });
  after(async () => {
    await daemon?.dispose();
  });

  it('cuts off connections that stall in the TLS handshake, the HTTP request or mid-message, while serving others', async () => {
    const token = await createToken(daemon.layout, ['--observer']);
    const good = await initialized(daemon, token);

    // 1. A TCP connection that never says anything.
    const silent = tcpConnect(daemon.port, '127.0.0.1');
    // 2. TLS, then request headers one byte at a time, never finished.
    const dribbler = await tlsTo(daemon);
    dribbler.write('GET /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const drip = setInterval(() => dribbler.writable && dribbler.write('X'), 50);
    // 3. A WebSocket that opens, starts a 1000-byte message, sends 10 bytes of it and stalls (and never answers a ping).
    const staller = await tlsTo(daemon);
    staller.write(upgradeRequest(daemon, token, 13));
    let answer = '';
    staller.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    await until(() => answer.includes('\r\n\r\n'), 'the upgrade answer');
    assert.match(answer, /^HTTP\/1\.1 101 /);
    staller.write(Buffer.concat([Buffer.from([0x81, 0x80 | 126, 0x03, 0xe8]), randomBytes(4), randomBytes(10)]));

    await Promise.all([closedByServer(silent), closedByServer(dribbler), closedByServer(staller)]);
    clearInterval(drip);
    // The well-behaved connection answered every ping and still works.
    assert.equal(codeOf(await good.request('session/list', {})), undefined);
    assert.equal(good.closed, undefined);
    good.close();
    await alive(daemon);
  });
});
