/**
 * The egress proxy end to end: tools in a real bwrap sandbox (driven by the model
 * emulator's tool calls) reach real upstreams on 127.0.0.2 through it, as the session's
 * network policy allows, and every decision is in the session's log. The attacks run
 * from inside the sandbox: a denied host, a port the policy does not name, names and
 * literals that lead to loopback, private and link-local addresses, the daemon's socket.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { AgentdError, DaemonStatus, ErrorCode, SessionAttach, SessionCreate, SessionGet, SessionPrompt, SessionSetNetwork, VaultSet, type Event, type PermissionQuestion, type SessionCreateParams } from '../protocol/index.js';
import { answeringClient, createSession, ofType, settle, startAgentRig, waitForEvent, workspace, type AgentRig } from './support/agent.js';
import { loopbackCertificate, startRecordingUpstream, UPSTREAM_HOST, type RecordingUpstream } from './support/egress-upstreams.js';
import { runAgentd } from './support/daemon.js';
import { startGitUpstream } from './support/upstreams.js';
import { until } from './support/until.js';

const resultText = (e: Event) => (e.data.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('');
const decided = (events: Event[]) => ofType(events, 'network.decided').map((e) => e.data as { host: string; port: number; decision: string; reason: string; toolUseId?: string; address?: string });

describe('egress proxy', () => {
  let rig: AgentRig;
  let tls: ReturnType<typeof loopbackCertificate>;
  let http: RecordingUpstream;
  let https: RecordingUpstream;
  /** Never allowed by any test: whatever reaches it got through. */
  let forbidden: RecordingUpstream;

  before(async () => {
    tls = loopbackCertificate();
    // The daemon checks the upstreams' certificate when it adds a credential over HTTPS, as it would a public host's.
    rig = await startAgentRig({ NODE_EXTRA_CA_CERTS: tls.cert });
    [http, https, forbidden] = await Promise.all([startRecordingUpstream(), startRecordingUpstream(tls), startRecordingUpstream()]);
  });
  after(async () => {
    await Promise.all([http, https, forbidden].map((u) => u?.close()));
    await rig?.dispose();
  });

  /** Runs each command as a bash tool call in a new session with `network`; returns the outputs and the log. */
  async function run(network: SessionCreateParams['network'], commands: string[], extra: Partial<SessionCreateParams> = {}): Promise<{ sessionId: string; out: string[]; events: Event[] }> {
    const client = await rig.daemon.client();
    const ws = workspace();
    copyFileSync(tls.cert, join(ws, 'ca.pem'));
    const sessionId = await createSession(client, { workspace: ws, ...(network ? { network } : {}), ...extra });
    rig.emulator.script([...commands.map((command) => reply.toolUse({ name: 'bash', input: { command } })), reply.text('done')]);
    await client.request(SessionPrompt, { sessionId, content: 'go' });
    const events = await settle(client, sessionId);
    return { sessionId, out: ofType(events, 'tool.result').map(resultText), events };
  }

  it('takes curl, node fetch and the proxy variables to an allowed host over HTTP and HTTPS, and records each decision with its tool call', async () => {
    const { out, events } = await run({ default: 'deny', allow: [http.authority, https.authority] }, [
      'env | grep -i _proxy= | cut -d= -f1 | sort | tr "\\n" " "',
      `curl -sS ${http.url}/plain`,
      `curl -sS --cacert ca.pem ${https.url}/tls`,
      `NODE_EXTRA_CA_CERTS=ca.pem node -e "fetch('${https.url}/fetch').then(r => r.text()).then(t => process.stdout.write(t), e => console.log('FAILED', e.cause?.message ?? e.message))"`,
    ]);
    for (const name of ['ALL_PROXY', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'all_proxy', 'http_proxy', 'https_proxy', 'no_proxy']) assert.match(out[0]!, new RegExp(`\\b${name}\\b`));
    assert.match(out[1]!, /hello from \/plain/);
    assert.match(out[2]!, /hello from \/tls/);
    assert.match(out[3]!, /hello from \/fetch/);
    const calls = ofType(events, 'tool.started').map((e) => String(e.data.toolUseId));
    const allowed = decided(events);
    assert.deepEqual(
      allowed.map((d) => [d.host, d.port, d.decision, d.toolUseId]),
      [
        [UPSTREAM_HOST, http.port, 'allow', calls[1]],
        [UPSTREAM_HOST, https.port, 'allow', calls[2]],
        [UPSTREAM_HOST, https.port, 'allow', calls[3]],
      ],
    );
    assert.ok(allowed.every((d) => d.address === UPSTREAM_HOST && d.reason.startsWith('allow "')));
  });

  it('tunnels a server that speaks first and a large body intact, byte for byte', async () => {
    // The upstream's banner is written the moment it accepts, before the proxy has answered
    // the CONNECT; then 8 MB of random bytes, which the proxy relays through one read buffer
    // to a reader that stops for a while.
    const body = Buffer.concat([Buffer.from('BANNER first words\n'), randomBytes(8 * 1024 * 1024)]);
    const server = createServer((socket) => socket.end(body));
    await new Promise<void>((resolve) => server.listen(0, UPSTREAM_HOST, resolve));
    const authority = `${UPSTREAM_HOST}:${(server.address() as AddressInfo).port}`;
    try {
      const script = [
        'const net = require("net"), crypto = require("crypto"), u = new URL(process.env.HTTP_PROXY);',
        `const s = net.connect(+u.port, u.hostname, () => s.write("CONNECT ${authority} HTTP/1.1\\r\\nHost: ${authority}\\r\\n\\r\\n"));`,
        'let head = Buffer.alloc(0), status = null, n = 0; const hash = crypto.createHash("sha256");',
        // A slow reader: the proxy's writes back up, and its read buffer must wait for them.
        's.once("data", () => { s.pause(); setTimeout(() => s.resume(), 300); });',
        's.on("data", (d) => { if (status === null) { head = Buffer.concat([head, d]); const i = head.indexOf("\\r\\n\\r\\n"); if (i < 0) return; status = head.subarray(0, head.indexOf("\\r\\n")).toString(); d = head.subarray(i + 4); } n += d.length; hash.update(d); });',
        's.on("end", () => console.log([status, n, hash.digest("hex")].join("|")));',
      ].join(' ');
      const { out } = await run({ default: 'deny', allow: [authority] }, [`node -e '${script}'`]);
      assert.equal(out[0]!.split('\n')[0], ['HTTP/1.1 200 Connection Established', body.length, createHash('sha256').update(body).digest('hex')].join('|'));
    } finally {
      server.close();
    }
  });

  it('clones a public repository from a git http-backend allowed by host, and not one whose host is not allowed', async () => {
    const [open, closed] = await Promise.all([startGitUpstream('', UPSTREAM_HOST), startGitUpstream('', UPSTREAM_HOST)]);
    try {
      const { out, events } = await run({ default: 'deny', allow: [new URL(open.url).host] }, [
        `git clone -q ${open.url} public 2>&1 && cat public/README.md`,
        `git clone -q ${closed.url} other 2>&1; echo "exit=$?"`,
      ]);
      assert.match(out[0]!, /hello from upstream/);
      assert.match(out[1]!, /403|not allowed/);
      assert.match(out[1]!, /exit=[1-9]/);
      assert.equal(closed.seen.length, 0, 'the host that was not allowed got nothing');
      // git makes a request per step (refs, then the pack): each is decided, and recorded.
      const byPort = new Set(decided(events).map((d) => `${d.port} ${d.decision}`));
      assert.deepEqual([...byPort].sort(), [`${new URL(closed.url).port} deny`, `${new URL(open.url).port} allow`].sort());
    } finally {
      await Promise.all([open.close(), closed.close()]);
    }
  });

  it('refuses a host the policy does not allow, with a clear error in the tool output and a network event', async () => {
    const before = forbidden.seen.length;
    const { out, events } = await run({ default: 'deny', allow: [http.authority] }, [`curl -sS ${forbidden.url}/x`, `curl -sS -o /dev/null ${forbidden.url.replace('http:', 'https:')}/x 2>&1`]);
    assert.match(out[0]!, new RegExp(`${UPSTREAM_HOST}:${forbidden.port} is not allowed for this session \\(default deny\\)`));
    assert.match(out[1]!, /CONNECT.*403|403.*CONNECT/i);
    assert.equal(forbidden.seen.length, before, 'nothing reached the host');
    assert.deepEqual(decided(events).map((d) => [d.port, d.decision, d.reason]), [
      [forbidden.port, 'deny', 'default deny'],
      [forbidden.port, 'deny', 'default deny'],
    ]);
  });

  it('refuses CONNECT to a port the policy does not name, and lets deny win over allow', async () => {
    const { out, events } = await run({ default: 'deny', allow: [UPSTREAM_HOST, http.authority], deny: [`${UPSTREAM_HOST}:${http.port}`] }, [
      `curl -sS --cacert ca.pem ${https.url}/port 2>&1`,
      `curl -sS ${http.url}/denied`,
    ]);
    assert.match(out[0]!, /403/);
    assert.match(out[1]!, /is not allowed for this session \(deny "127\.0\.0\.2:\d+"\)/);
    assert.ok(!https.seen.some((s) => s.path === '/port') && !http.seen.some((s) => s.path === '/denied'));
    assert.deepEqual(decided(events).map((d) => d.decision), ['deny', 'deny']);
  });

  it('refuses names and literals that lead to loopback, private and link-local addresses, even when the default allows everything', async () => {
    // The client is the attacker's: it sends every form to the proxy itself (no NO_PROXY).
    const via = `curl -sS --noproxy '' -x "$HTTP_PROXY" -m 10`;
    const attempts = [
      `http://localhost:${http.port}/name`,
      `http://${UPSTREAM_HOST}:${http.port}/literal`,
      `http://2130706434:${http.port}/decimal`,
      `http://0x7f.0.0.2:${http.port}/hex`,
      `http://[::ffff:127.0.0.2]:${http.port}/mapped`,
      `http://0.0.0.0:${http.port}/zero`,
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/private',
      'http://192.168.1.1/private',
      'http://[::1]/v6-loopback',
    ];
    const tunnel = `curl -sS --noproxy '' -p -x "$HTTP_PROXY" -m 10 --cacert ca.pem https://localhost:${https.port}/tunnel 2>&1`;
    const before = http.seen.length + https.seen.length;
    const { out, events } = await run({ default: 'allow' }, [...attempts.map((url) => `${via} '${url}'`), tunnel]);
    for (const [i, text] of out.entries()) assert.match(text, /is not allowed for this session|403/, `attempt ${i}: ${text}`);
    assert.equal(http.seen.length + https.seen.length, before, 'nothing reached the loopback upstreams');
    const refusals = decided(events);
    assert.equal(refusals.length, attempts.length + 1);
    assert.ok(refusals.every((d) => d.decision === 'deny' && /loopback, private or link-local/.test(d.reason)), JSON.stringify(refusals));
  });

  it('reaches a loopback host only when named exactly, and the daemon socket not at all', async () => {
    const socket = rig.daemon.layout.socket;
    const { out, events } = await run({ default: 'deny', allow: [`localhost:${http.port}`, http.authority] }, [
      `curl -sS --noproxy '' -x "$HTTP_PROXY" http://localhost:${http.port}/exact`,
      `node -e "require('net').connect(${JSON.stringify(socket)}).on('connect', () => console.log('CONNECTED')).on('error', e => console.log('FAILED', e.code))"`,
      `curl -sS -m 5 --unix-socket ${socket} http://agentd/ 2>&1; echo " exit=$?"`,
    ]);
    // localhost resolves to 127.0.0.1 outside, where nothing listens on this port: the proxy let it try.
    assert.doesNotMatch(out[0]!, /not allowed for this session/);
    assert.deepEqual(decided(events).map((d) => [d.host, d.decision, d.address]), [['localhost', 'allow', '127.0.0.1']]);
    assert.match(out[1]!, /FAILED/);
    assert.match(out[2]!, /exit=[1-9]/);
  });

  it('leaves nothing inside holding the channel the proxy listener came through: tools neither inherit it nor reach it', async () => {
    // The host (node running main.cjs) handed its listener over through an IPC channel (a socket, its fd 5); by the first call that is closed.
    const host = `h=$(for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline | grep -q '^[^ ]*node [^ ]*main.cjs' && echo \${p#/proc/}; done | head -1)`;
    const { out } = await run({ default: 'deny', allow: [http.authority] }, [
      `${host}; echo "host=$h"; cat /proc/self/environ /proc/$$/environ | tr '\\0' '\\n' | grep -c '^NODE_CHANNEL'; readlink /proc/$h/fd/5 || echo closed; ls -l /proc/self/fd/ /proc/$$/fd/ | grep -c 'socket:'`,
      // Every socket of the host through /proc: the kernel opens no socket that way.
      `${host}; for f in /proc/$h/fd/*; do case "$(readlink $f)" in socket:*) printf 'garbage\\n' 2>/dev/null > $f && echo "wrote to host fd \${f##*/}";; esac; done; echo tried`,
      `curl -sS ${http.url}/after`,
    ]);
    const [hostLine, channelEnv, hostFd5, ownSockets] = out[0]!.split('\n');
    assert.match(hostLine!, /^host=\d+$/, out[0]);
    assert.notEqual(hostLine, 'host=1', 'the host, not the sandbox\'s pid 1');
    assert.equal(channelEnv, '0', 'no NODE_CHANNEL_FD in a tool\'s environment');
    // Closed, or (fds are reused) no longer a socket.
    assert.doesNotMatch(hostFd5!, /socket:/, 'the host closed its end of the channel');
    assert.equal(ownSockets, '0', `a tool and its shell hold no socket: ${out[0]}`);
    assert.match(out[1]!, /tried/);
    assert.doesNotMatch(out[1]!, /wrote to host fd/);
    // The daemon is up and the proxy serves the sandbox as before.
    assert.match(out[2]!, /hello from \/after/);
  });

  it('asks the session’s controllers about an undecided host while the request waits; allow always joins the policy', async () => {
    const owner = await rig.daemon.client();
    const ws = workspace();
    const sessionId = await createSession(owner, { workspace: ws, network: { default: 'ask' } });
    // A second client, a controller of the session, answers.
    const asked: PermissionQuestion[] = [];
    const statuses: string[] = [];
    const second = await answeringClient(rig.daemon.layout, 'second', async (q) => {
      asked.push(q);
      statuses.push((await owner.request(SessionGet, { sessionId })).status);
      return q.input.port === http.port ? 'allow_always' : 'deny';
    });
    try {
      await second.request(SessionAttach, { sessionId, role: 'controller' });
      rig.emulator.script([
        reply.toolUse({ name: 'bash', input: { command: `curl -sS ${http.url}/asked` } }),
        reply.toolUse({ name: 'bash', input: { command: `curl -sS ${http.url}/again` } }),
        reply.toolUse({ name: 'bash', input: { command: `curl -sS ${forbidden.url}/refused` } }),
        reply.text('done'),
      ]);
      await owner.request(SessionPrompt, { sessionId, content: 'go' });
      const events = await settle(owner, sessionId);
      const out = ofType(events, 'tool.result').map(resultText);
      assert.match(out[0]!, /hello from \/asked/);
      assert.match(out[1]!, /hello from \/again/);
      assert.match(out[2]!, /not allowed for this session \(answered deny by second#/);
      assert.deepEqual(asked.map((q) => [q.kind, q.tool, q.input.host, q.input.port]), [
        ['network', 'network', UPSTREAM_HOST, http.port],
        ['network', 'network', UPSTREAM_HOST, forbidden.port],
      ]);
      const calls = ofType(events, 'tool.started').map((e) => String(e.data.toolUseId));
      assert.equal(asked[0]!.input.toolUseId, calls[0], 'the question names the tool call that made the connection');
      const requested = ofType(events, 'permission.requested');
      assert.deepEqual(requested.map((e) => e.data.kind), ['network', 'network']);
      assert.deepEqual(ofType(events, 'permission.resolved').map((e) => [e.data.decision, String(e.data.by).split('#')[0]]), [['allow_always', 'second'], ['deny', 'second']]);
      assert.deepEqual(decided(events).map((d) => [d.port, d.decision, d.reason.split(' by ')[0]]), [
        [http.port, 'allow', 'answered allow_always'],
        [http.port, 'allow', `answered allow always ("${http.authority}")`],
        [forbidden.port, 'deny', 'answered deny'],
      ]);
      const info = await owner.request(SessionGet, { sessionId });
      assert.deepEqual(info.network, { default: 'ask', added: [http.authority] });
      // While a question was open the session said it waits, as for a tool's question.
      assert.deepEqual(statuses, ['waiting', 'waiting']);
      assert.equal(info.status, 'idle');
    } finally {
      second.close();
    }
  });

  it('changes a session’s policy after create: the next connection goes by it, answered hosts can be forgotten, bad patterns and observers are refused', async () => {
    const owner = await rig.daemon.client();
    const ws = workspace();
    const sessionId = await createSession(owner, { workspace: ws, network: { default: 'ask' } });
    const second = await answeringClient(rig.daemon.layout, 'second', async () => 'allow_always');
    const watcher = await rig.daemon.client();
    const code = (expected: number) => (e: unknown) => e instanceof AgentdError && e.code === expected;
    /** One curl as a tool call in the session; its output. */
    const curl = async (path: string) => {
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: `curl -sS ${http.url}${path}` } }), reply.text('done')]);
      await owner.request(SessionPrompt, { sessionId, content: 'go' });
      return resultText(ofType(await settle(owner, sessionId), 'tool.result').at(-1)!);
    };
    try {
      await second.request(SessionAttach, { sessionId, role: 'controller' });
      assert.match(await curl('/answered'), /hello from \/answered/);
      second.close();
      // Forgetting what answers added: the host is refused again, by the new default.
      const forgot = await owner.request(SessionSetNetwork, { sessionId, network: { default: 'deny', added: [] } });
      assert.deepEqual(forgot.network, { default: 'deny', added: [] });
      assert.match(await curl('/forgotten'), /not allowed for this session \(default deny\)/);
      // Allowing it by name; without `added` the (empty) answered list stays as it is.
      await owner.request(SessionSetNetwork, { sessionId, network: { default: 'deny', allow: [http.authority] } });
      assert.match(await curl('/allowed'), /hello from \/allowed/);
      assert.ok(!http.seen.some((s) => s.path === '/forgotten'), 'the refused request never reached the host');

      // Bad input: a pattern the proxy could never match, at create and here; the policy stays.
      for (const bad of ['https://example.com', 'example.com/path', 'a.*.com']) {
        await assert.rejects(owner.request(SessionSetNetwork, { sessionId, network: { default: 'allow', deny: [bad] } }), code(ErrorCode.InvalidParams), bad);
        await assert.rejects(owner.request(SessionCreate, { workspace: workspace(), network: { default: 'allow', deny: [bad] } }), code(ErrorCode.InvalidParams), bad);
      }
      await assert.rejects(owner.request(SessionSetNetwork, { sessionId: 's_0000000000nope', network: { default: 'allow' } }), code(ErrorCode.SessionNotFound));
      // An observer may read the policy, not change it.
      await watcher.request(SessionAttach, { sessionId, role: 'observer' });
      await assert.rejects(watcher.request(SessionSetNetwork, { sessionId, network: { default: 'allow' } }), code(ErrorCode.NotController));
      assert.deepEqual((await watcher.request(SessionGet, { sessionId })).network, { default: 'deny', allow: [http.authority], added: [] });

      const events = await settle(owner, sessionId);
      assert.deepEqual(ofType(events, 'network.changed').map((e) => e.data.network), [
        { default: 'deny', added: [] },
        { default: 'deny', allow: [http.authority], added: [] },
      ]);
      assert.deepEqual(decided(events).map((d) => [d.decision, d.reason.split(' by ')[0]]), [
        ['allow', 'answered allow_always'],
        ['deny', 'default deny'],
        ['allow', `allow "${http.authority}"`],
      ]);

      // The CLI: --forget and --deny-host amend the policy; without options it shows it.
      const changed = await runAgentd(rig.daemon.layout, ['network', sessionId, '--forget', http.authority, '--deny-host', 'evil.example', '--json']);
      assert.equal(changed.code, 0, changed.stderr);
      assert.deepEqual(JSON.parse(changed.stdout), { default: 'deny', deny: ['evil.example'], added: [] });
      const shown = await runAgentd(rig.daemon.layout, ['network', sessionId]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /default deny\n\s+allow\s+-\n\s+deny\s+evil\.example\n/);
      const unknown = await runAgentd(rig.daemon.layout, ['network', sessionId, '--forget', 'never.example']);
      assert.equal(unknown.code, 2, 'bad usage');
      assert.match(unknown.stderr, /--forget never\.example: not in the session's policy/);
      const refused = await runAgentd(rig.daemon.layout, ['network', sessionId, '--allow-host', 'http://evil.example']);
      assert.equal(refused.code, 2, 'bad usage');
      assert.match(refused.stderr, /not a host pattern/);
      assert.deepEqual((await owner.request(SessionGet, { sessionId })).network, { default: 'deny', deny: ['evil.example'], added: [] });
    } finally {
      second.close();
      watcher.close();
    }
  });

  it('closes a network question a daemon crash cut off as such; the session asks again after it, and the answer holds', async () => {
    const owner = await rig.daemon.client();
    const sessionId = await createSession(owner, { network: { default: 'ask' } });
    const curl = `curl -sS -m 120 ${http.url}/after-restart`;
    rig.emulator.script([
      reply.toolUse({ name: 'bash', input: { command: curl } }),
      reply.toolUse({ name: 'bash', input: { command: curl } }),
      reply.text('done'),
    ]);
    await owner.request(SessionPrompt, { sessionId, content: 'go' });
    await waitForEvent(owner, sessionId, (e) => e.type === 'permission.requested' && e.data.kind === 'network');
    await rig.crashAndRestart();
    // Nobody answered before the crash; a controller of the new daemon answers what it is asked now.
    const asked: PermissionQuestion[] = [];
    const controller = await answeringClient(rig.daemon.layout, 'after-restart', async (q) => {
      asked.push(q);
      return 'allow_always';
    });
    try {
      await controller.request(SessionAttach, { sessionId, role: 'controller' });
      const events = await settle(controller, sessionId);
      const requested = ofType(events, 'permission.requested').filter((e) => e.data.kind === 'network');
      assert.equal(requested.length, 2, 'the question before the crash is in the log, and the session asked again after it');
      const woke = ofType(events, 'harness.woke')[0]!;
      assert.ok(requested[0]!.seq < woke.seq && woke.seq < requested[1]!.seq);
      // The question the crash cut is closed in the log by the daemon that woke the session, before it asks again.
      const resolved = ofType(events, 'permission.resolved');
      assert.deepEqual(
        resolved.map((e) => [e.data.toolUseId, e.data.decision]),
        [
          [requested[0]!.data.toolUseId, 'deny'],
          [requested[1]!.data.toolUseId, 'allow_always'],
        ],
      );
      assert.match(String(resolved[0]!.data.by), /^cut: the daemon stopped/);
      assert.ok(woke.seq < resolved[0]!.seq && resolved[0]!.seq < requested[1]!.seq);
      const out = ofType(events, 'tool.result').map(resultText);
      assert.match(out.at(-1)!, /hello from \/after-restart/);
      assert.equal(asked.length, 1, 'only the live question was asked');
      assert.deepEqual((await controller.request(SessionGet, { sessionId })).network?.added, [http.authority]);
    } finally {
      controller.close();
    }
  });

  it('injects a bound credential only on requests to its host and path, including git over HTTP with Basic auth', async () => {
    const token = `egress-token-${Math.random().toString(36).slice(2)}`;
    const git = await startGitUpstream(token, UPSTREAM_HOST);
    try {
      const client = await rig.daemon.client();
      await client.request(VaultSet, { name: 'API', value: token, binding: { kind: 'http', url: `${http.url}/api` } });
      await client.request(VaultSet, { name: 'REPO', value: token, binding: { kind: 'git', url: git.url } });
      const gitAuthority = new URL(git.url).host;
      const since = { http: http.seen.length, forbidden: forbidden.seen.length };
      const { out, events } = await run({ default: 'deny', allow: [http.authority, forbidden.authority, gitAuthority] }, [
        `curl -sS ${http.url}/api/bound`,
        `curl -sS ${http.url}/elsewhere`,
        `curl -sS -H 'Host: ${http.authority}' ${forbidden.url}/api/smuggled`,
        `git clone -q ${git.url} clone 2>&1 && cat clone/README.md`,
        // undici tunnels plain HTTP with CONNECT too: the proxy serves the tunnel itself.
        `node -e "fetch('${http.url}/api/fetched').then(r => r.text()).then(t => process.stdout.write(t), e => console.log('FAILED', e.cause?.message ?? e.message))"`,
      ], { credentials: ['API', 'REPO'] });
      assert.match(out[0]!, /hello from \/api\/bound/);
      const got = (u: RecordingUpstream, from: number, path: string) => u.seen.slice(from).find((s) => s.path === path)!.headers;
      assert.equal(got(http, since.http, '/api/bound').authorization, `Bearer ${token}`);
      assert.equal(got(http, since.http, '/elsewhere').authorization, undefined, 'not under the bound path');
      assert.match(out[4]!, /hello from \/api\/fetched/);
      assert.equal(got(http, since.http, '/api/fetched').authorization, `Bearer ${token}`);
      assert.equal(got(forbidden, since.forbidden, '/api/smuggled').authorization, undefined, 'another host, whatever Host says');
      assert.match(out[3]!, /hello from upstream/);
      assert.ok(git.seen.some((h) => h.startsWith('Basic ')), 'git got the Basic credential');
      assert.doesNotMatch(JSON.stringify(events), new RegExp(token));
    } finally {
      await git.close();
    }
  });

  it('adds a credential bound to an HTTPS origin there only, seeing inside TLS with a CA the sandbox trusts, and git clone over HTTPS works', async () => {
    const token = `tls-token-${Math.random().toString(36).slice(2)}`;
    const git = await startGitUpstream(token, UPSTREAM_HOST, tls);
    try {
      const client = await rig.daemon.client();
      await client.request(VaultSet, { name: 'TLS_API', value: token, binding: { kind: 'http', url: `${https.url}/api` } });
      await client.request(VaultSet, { name: 'TLS_REPO', value: token, binding: { kind: 'git', url: git.url } });
      const since = https.seen.length;
      const home = rig.daemon.layout.home;
      // Bound origins need no allow entry of their own: the binding names them.
      const { out, events } = await run({ default: 'deny' }, [
        `curl -sS ${https.url}/api/bound`,
        `curl -sS ${https.url}/public`,
        `node -e "fetch('${https.url}/api/fetch').then(r => r.text()).then(t => process.stdout.write(t), e => console.log('FAILED', e.cause?.message ?? e.message))"`,
        `git clone -q ${git.url} clone 2>&1 && cat clone/README.md`,
        `curl -sS --cacert ca.pem ${https.url}/api/own-trust 2>&1; echo " exit=$?"`,
        `ls ${home}/proxy/ca 2>&1; cat ${home}/proxy/ca/ca.key 2>&1 | head -1`,
        // Inside the bound host's tunnel, a request that names another host is refused, not sent there.
        `curl -sS --request-target 'http://${forbidden.authority}/api/elsewhere' ${https.url}/api/x`,
      ], { credentials: ['TLS_API', 'TLS_REPO'] });
      assert.match(out[0]!, /hello from \/api\/bound/);
      assert.match(out[1]!, /hello from \/public/);
      assert.match(out[2]!, /hello from \/api\/fetch/);
      assert.match(out[3]!, /hello from upstream/);
      // A client that trusts only the upstream's own CA refuses the proxy's certificate: nothing is sent.
      assert.match(out[4]!, /exit=[1-9]/);
      assert.doesNotMatch(out[5]!, /BEGIN/, 'the CA key is not in the sandbox');
      assert.match(out[6]!, /must name a path/);
      assert.ok(!forbidden.seen.some((s) => s.path === '/api/elsewhere') && !https.seen.some((s) => s.path.includes('elsewhere')));
      const got = (path: string) => https.seen.slice(since).find((s) => s.path === path)?.headers;
      assert.equal(got('/api/bound')!.authorization, `Bearer ${token}`);
      assert.equal(got('/api/fetch')!.authorization, `Bearer ${token}`);
      assert.equal(got('/public')!.authorization, undefined, 'not under the bound path');
      assert.equal(got('/api/own-trust'), undefined);
      assert.ok(git.seen.some((h) => h.startsWith('Basic ')), 'git got the Basic credential over HTTPS');
      assert.ok(decided(events).some((d) => d.decision === 'allow' && /a credential of the session is bound to/.test(d.reason)));
      assert.doesNotMatch(JSON.stringify(events), new RegExp(token));
    } finally {
      await git.close();
    }
  });

  it('agentd doctor shows the proxy: the default policy with the presets\' hosts, and the CA by fingerprint', async () => {
    const result = await runAgentd(rig.daemon.layout, ['doctor', '--json'], { env: { AGENTD_NETWORK_PRESETS: 'package-registries' } });
    const findings = new Map((JSON.parse(result.stdout) as { findings: Array<{ name: string; detail: string }> }).findings.map((f) => [f.name, f.detail]));
    assert.match(findings.get('egress proxy')!, /default deny, presets package-registries \(registry\.npmjs\.org, .*pypi\.org.*\)/);
    // The HTTPS credential test above made the CA.
    const pem = readFileSync(join(rig.daemon.layout.home, 'proxy', 'ca', 'ca.pem'));
    assert.match(findings.get('egress CA')!, new RegExp(`SHA-256 ${new X509Certificate(pem).fingerprint256}`));
  });

  it('gives a session without a network policy the daemon default: deny', async () => {
    const client = await rig.daemon.client();
    const sessionId = await createSession(client);
    assert.deepEqual((await client.request(SessionGet, { sessionId })).network, { default: 'deny', added: [] });
    const before = http.seen.length;
    const { out } = await run(undefined, [`curl -sS ${http.url}/default`]);
    assert.match(out[0]!, /default deny/);
    assert.equal(http.seen.length, before);
  });
});

describe('egress proxy from a pooled sandbox', () => {
  let rig: AgentRig;
  let http: RecordingUpstream;
  before(async () => {
    rig = await startAgentRig({ AGENTD_SANDBOX_POOL: '1' });
    http = await startRecordingUpstream();
  });
  after(async () => {
    await http?.close();
    await rig?.dispose();
  });

  it('reaches an allowed host and is refused the rest, as a cold sandbox is', async () => {
    const client = await rig.daemon.client();
    await until(async () => (await client.request(DaemonStatus, {})).sandboxPool?.ready === 1, 'the pool to be full');
    const sessionId = await createSession(client, { network: { default: 'deny', allow: [http.authority] } });
    rig.emulator.script([
      reply.toolUse({ name: 'bash', input: { command: `curl -sS ${http.url}/pooled` } }),
      reply.toolUse({ name: 'bash', input: { command: `curl -sS -m 10 --noproxy '' -x "$HTTP_PROXY" http://169.254.169.254/latest/meta-data/` } }),
      reply.text('done'),
    ]);
    await client.request(SessionPrompt, { sessionId, content: 'go' });
    const events = await settle(client, sessionId);
    assert.equal(ofType(events, 'sandbox.provisioned')[0]?.data.pooled, true, 'the sandbox came from the pool');
    const out = ofType(events, 'tool.result').map(resultText);
    assert.match(out[0]!, /hello from \/pooled/);
    assert.match(out[1]!, /not allowed for this session \(default deny\)/);
  });
});

describe('egress proxy at the weaker isolation levels', () => {
  let rig: AgentRig;
  let http: RecordingUpstream;
  before(async () => {
    rig = await startAgentRig({}, ['--isolation-floor', 'none']);
    http = await startRecordingUpstream();
  });
  after(async () => {
    await http?.close();
    await rig?.dispose();
  });

  // Each level's host hands its listener over the same way: namespaces in its own network namespace, none on the machine's loopback.
  for (const isolation of ['namespaces', 'none'] as const) {
    it(`serves a ${isolation} sandbox on the listener its host handed over`, async () => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client, { sandbox: { isolation }, network: { default: 'deny', allow: [http.authority] } });
      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: `echo "$HTTP_PROXY"; curl -sS ${http.url}/${isolation}` } }), reply.text('done')]);
      await client.request(SessionPrompt, { sessionId, content: 'go' });
      const events = await settle(client, sessionId);
      assert.equal(ofType(events, 'sandbox.provisioned')[0]?.data.isolation, isolation);
      const [proxy, answer] = resultText(ofType(events, 'tool.result')[0]!).split('\n');
      assert.match(proxy!, isolation === 'none' ? /^http:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:7890$/);
      assert.match(answer!, new RegExp(`hello from /${isolation}`));
    });
  }
});
