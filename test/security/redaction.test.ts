/**
 * Redaction catches what an upstream echo can carry. A real upstream echoes the secret
 * the proxy added, in every encoding it could use (test/support/upstreams.ts); the
 * sandbox fetches each one through the proxy, compressed or not, and the same forms
 * sit in a workspace file the model reads (the tool-result layer) and in a proxy path
 * the daemon logs. Whatever reaches the sandbox, the log, daemon.log, LevelDB or a
 * client is then *decoded* by an oracle written apart from the redactor, looking for
 * the secret. The redactor's stream is also cut at every byte of every form.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, PROTOCOL_VERSION, type Event } from '../../protocol/index.js';
import { Redactor } from '../../daemon/vault/redact.js';
import { settle, startAgentRig, workspace as makeWorkspace, type AgentRig } from '../support/agent.js';
import { RawConnection, runAgentd } from '../support/daemon.js';
import { reply } from '../../clients/cli/demo/model-emulator.js';
import { ECHO_FORMS, startEchoUpstream, type EchoForm, type Upstream } from '../support/upstreams.js';
import { withFixture } from '../support/fixture.js';

/**
 * Whether `text` gives the secret away to someone who decodes it: line breaks dropped,
 * %XX and \uXXXX decoded, then the secret looked for as is, in every hex run and in
 * every base64 or base64url run at each of its four offsets.
 */
function exposes(text: string, secret: string): boolean {
  const plain = text
    .replace(/(\r?\n|\\r|\\n)[ \t]*/g, '')
    .replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  if (plain.includes(secret)) return true;
  for (const run of plain.match(/[0-9a-fA-F]{12,}/g) ?? []) {
    for (const offset of [0, 1]) if (Buffer.from(run.slice(offset), 'hex').toString('latin1').includes(secret)) return true;
  }
  for (const run of plain.match(/[A-Za-z0-9+/\-_]{8,}/g) ?? []) {
    for (let offset = 0; offset < 4; offset++) {
      const decoded = Buffer.from(run.slice(offset).replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1');
      if (decoded.includes(secret.slice(1, -1))) return true;
    }
  }
  return false;
}

function* files(dir: string): Generator<[string, Buffer]> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (info?.isDirectory()) yield* files(path);
    else if (info?.isFile()) yield [path, readFileSync(path)];
  }
}

/** Output of `for f in ...; do echo "== $f"; ...; done`, by section name. */
function sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(/^== /m).slice(1)) {
    const newline = part.indexOf('\n');
    out.set(part.slice(0, newline).trim(), part.slice(newline + 1).replace(/\s*\[exit code: \d+\]\s*$/, ''));
  }
  return out;
}

const FORMS = Object.keys(ECHO_FORMS) as EchoForm[];

describe('redaction of what an upstream echoes', () => {
  const secret = `tok${randomBytes(12).toString('hex')}`;
  let rig: AgentRig;
  let echo: Upstream;
  let raw: RawConnection;
  let events: Event[];
  let results: string[];

  before(async () => {
    rig = await startAgentRig();
    echo = await startEchoUpstream(secret);
    raw = await RawConnection.open(rig.daemon.layout.socket);
    let id = 1;
    const call = (method: string, params?: unknown) => raw.request(id++, method, params);
    await call('initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'redaction-suite' } });
    await call('vault/set', { name: 'API', value: secret, binding: { kind: 'http', url: echo.url } });
    const ws = makeWorkspace();
    // The same forms, put in the workspace by the user: only the tool-result layer stands between them and the log.
    mkdirSync(join(ws, 'forms'));
    for (const form of FORMS) writeFileSync(join(ws, 'forms', `${form}.txt`), ECHO_FORMS[form](secret));
    const created = await call('session/create', { workspace: ws, permissions: { default: 'allow' }, credentials: ['API'] });
    const sessionId = (created.result as { sessionId: string }).sessionId;
    await call('session/subscribe', { sessionId, from: 0 });
    const bash = (command: string) => reply.toolUse({ name: 'bash', input: { command } });
    const list = FORMS.join(' ');
    rig.emulator.script([
      bash(`for f in ${list}; do echo "== $f"; curl -s "$AGENTD_PROXY/API/echo/$f"; echo; done`),
      bash('curl -s -D - -o /dev/null "$AGENTD_PROXY/API/echo-header"'),
      bash('for c in gzip deflate br; do echo "== $c --compressed"; curl -s --compressed "$AGENTD_PROXY/API/echo-$c"; echo; echo "== $c"; curl -s "$AGENTD_PROXY/API/echo-$c"; echo; done'),
      bash(`curl -s -w ' status=%{http_code}' "$AGENTD_PROXY/API/echo-zstd"`),
      bash('curl -s "$AGENTD_PROXY/API/echo-trickle"'),
      bash(`for f in ${list}; do echo "== $f"; cat forms/$f.txt; echo; done`),
      bash('curl -s "$AGENTD_PROXY/$(cat forms/hex.txt)/x"; curl -s "$AGENTD_PROXY/$(cat forms/base64.txt)/x"'),
      reply.text('done'),
    ]);
    await call('session/prompt', { sessionId, content: 'fetch every echo' });
    events = await settle(await rig.daemon.client(), sessionId);
    results = events.filter((e) => e.type === 'tool.result').map((e) => (e.data.content as Array<{ text?: string }>).map((c) => c.text ?? '').join(''));
    // Errors that would echo an encoded secret from a request's params.
    await call('session/create', { workspace: `/nonexistent/${Buffer.from(secret).toString('hex')}` });
    await call('session/create', { workspace: `/nonexistent/${Buffer.from(secret).toString('base64')}` });
    raw.close();
    await rig.daemon.kill('SIGTERM');
  });

  after(async () => {
    await rig.dispose();
    await echo.close();
  });

  it('used the secret for real: the upstream received it on every request', () => {
    assert.ok(echo.seen.length >= FORMS.length + 8);
    assert.ok(echo.seen.every((h) => h === `Bearer ${secret}`));
    assert.equal(results.length, 7, JSON.stringify(results));
  });

  /** Every form's section says REDACTED and gives nothing away. */
  const assertEveryFormRedacted = (output: string) => {
    const byForm = sections(output);
    for (const form of FORMS) {
      const text = byForm.get(form) ?? '';
      assert.match(text, /\[REDACTED:API\]/, `${form}: ${text}`);
      assert.ok(!exposes(text, secret), `${form} leaked: ${text}`);
    }
  };

  it('redacts every encoding the upstream echoed, through the proxy', () => assertEveryFormRedacted(results[0]!));

  it('redacts a secret echoed in a response header', () => {
    assert.match(results[1]!, /x-echo: Bearer \[REDACTED:API\]/i);
    assert.ok(!exposes(results[1]!, secret));
  });

  it('decodes gzip, deflate and br before redacting, asked for or not', () => {
    const compressed = sections(results[2]!);
    for (const coding of ['gzip', 'deflate', 'br']) {
      for (const name of [`${coding} --compressed`, coding]) {
        assert.equal(compressed.get(name)?.trim(), 'compressed: [REDACTED:API]', `${name}: ${JSON.stringify(compressed.get(name))}`);
      }
    }
  });

  it('refuses an encoding it cannot decode instead of passing it on', () => {
    assert.match(results[3]!, /content-encoding "zstd", which the proxy cannot decode to redact/);
    assert.match(results[3]!, /status=502/);
    assert.ok(!exposes(results[3]!, secret));
  });

  it('redacts a secret that arrives one byte per write', () => {
    assert.equal(results[4]!.trim().replace(/\s*\[exit code: 0\]$/, ''), 'trickled: [REDACTED:API] done');
  });

  it('redacts every encoding in a tool result that did not come through the proxy', () => assertEveryFormRedacted(results[5]!));

  it('finds the secret, decoded any way, in none of the places it must never be', () => {
    const hits: string[] = [];
    const check = (where: string, text: string | Buffer) => {
      if (exposes(Buffer.isBuffer(text) ? text.toString('latin1') : text, secret)) hits.push(where);
    };
    check('session log', JSON.stringify(events));
    check('daemon.log', readFileSync(rig.daemon.layout.logFile));
    for (const [path, bytes] of files(rig.daemon.layout.db)) check(`LevelDB file ${path}`, bytes);
    check('every message sent to the client', JSON.stringify(raw.messages));
    check('daemon stdout and stderr', rig.daemon.stdout() + rig.daemon.stderr());
    assert.deepEqual(hits, []);
    // The proxy logged the refused names, redacted.
    assert.match(readFileSync(rig.daemon.layout.logFile, 'utf8'), /proxy refused.*REDACTED:API/);
    const errors = raw.messages.filter((m) => m.error).map((m) => JSON.stringify(m.error));
    assert.equal(errors.length, 2);
    for (const e of errors) assert.match(e, /REDACTED:API/);
  });
});

describe('the redactor on its own', () => {
  const secret = 'sk-Zq9_4mPx+/tok3nV4lue';
  const redactor = new Redactor([{ name: 'K', value: secret }]);

  it('redacts every form in a stream cut at any byte', async () => {
    for (const form of FORMS) {
      const payload = Buffer.from(`before ${ECHO_FORMS[form](secret)} after`);
      for (let cut = 1; cut < payload.length; cut++) {
        const stream = redactor.stream();
        const out: Buffer[] = [];
        stream.on('data', (d: Buffer) => out.push(d));
        const ended = new Promise((resolve) => stream.on('end', resolve));
        stream.write(payload.subarray(0, cut));
        stream.end(payload.subarray(cut));
        await ended;
        const text = Buffer.concat(out).toString('latin1');
        assert.ok(text.includes('[REDACTED:K]') && !exposes(text, secret), `${form} cut at ${cut}: ${text}`);
        assert.ok(text.startsWith('before ') && text.endsWith(' after'), `${form} cut at ${cut}: the rest passes unchanged: ${text}`);
      }
    }
  });

  it('leaves binary bodies byte for byte as they were', async () => {
    const body = randomBytes(256 * 1024);
    const stream = redactor.stream();
    const out: Buffer[] = [];
    stream.on('data', (d: Buffer) => out.push(d));
    const ended = new Promise((resolve) => stream.on('end', resolve));
    for (let at = 0; at < body.length; at += 1000) stream.write(body.subarray(at, at + 1000));
    stream.end();
    await ended;
    assert.ok(Buffer.concat(out).equals(body));
  });

  it('is refused at vault set when shorter than 6 characters, saying why', async () => {
    await withFixture(startAgentRig(), async (rig) => {
      const conn = await RawConnection.open(rig.daemon.layout.socket);
      await conn.request(1, 'initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'short' } });
      const refused = await conn.request(2, 'vault/set', { name: 'SHORT', value: 'abc12' });
      assert.equal((refused.error as { code: number }).code, ErrorCode.InvalidParams);
      assert.match((refused.error as { message: string }).message, /value: a secret must be at least 6 characters long/);
      conn.close();
      const cli = await runAgentd(rig.daemon.layout, ['vault', 'set', 'SHORT'], { input: 'abc12\n' });
      assert.equal(cli.code, 2, cli.stderr);
      assert.match(cli.stderr, /at least 6 characters long/);
      assert.doesNotMatch(cli.stderr + cli.stdout, /abc12/);
    });
  });
});
