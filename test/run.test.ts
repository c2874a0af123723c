/** `agentd run` as a user runs it: a real CLI process, a real daemon, the real harness and sandbox, the emulator as the model. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import * as pty from '@lydell/node-pty';
import { SessionEvents, SessionList, type Event } from '../protocol/index.js';
import { AGENTD_BIN, startDaemon, type TestDaemon } from './support/daemon.js';
import { reply, type RecordedRequest } from '../clients/cli/demo/model-emulator.js';
import { API_KEY, startAgentRig } from './support/agent.js';
import { tempDir } from './support/temp.js';
import { until } from './support/until.js';
import { startRecordingUpstream } from './support/egress-upstreams.js';
import { suiteFixture, withFixture } from './support/fixture.js';

interface Run {
  child: ReturnType<typeof spawn>;
  stdout(): string;
  stderr(): string;
  done: Promise<number | null>;
}

/** The CLI as a child process with stdin a pipe (not a terminal), as in scripts and CI. */
function agentdRun(daemon: TestDaemon, args: string[], env: Record<string, string> = { ANTHROPIC_API_KEY: API_KEY }): Run {
  const child = spawn(process.execPath, [AGENTD_BIN, 'run', ...args], {
    env: { ...process.env, AGENTD_HOME: daemon.layout.home, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.end();
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  return { child, stdout: () => out, stderr: () => err, done };
}

/** The CLI on a real terminal (a PTY): stdout and stderr arrive together, keys are typed. */
function agentdRunTty(daemon: TestDaemon, args: string[]) {
  const term = pty.spawn(process.execPath, [AGENTD_BIN, 'run', ...args], {
    cols: 200,
    rows: 50,
    env: { ...process.env, AGENTD_HOME: daemon.layout.home, ANTHROPIC_API_KEY: API_KEY } as Record<string, string>,
  });
  let screen = '';
  term.onData((d) => (screen += d));
  const done = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  let seen = 0;
  return {
    screen: () => screen,
    done,
    type: (keys: string) => term.write(keys),
    /** Waits for the next occurrence of `pattern` after the previous match. */
    async expect(pattern: RegExp): Promise<void> {
      const m = await until(() => pattern.exec(screen.slice(seen)), `${pattern} on the terminal`).catch(() => {
        throw new Error(`no ${pattern} on the terminal:\n${screen}`);
      });
      seen += m.index + m[0].length;
    },
  };
}

function sessionOf(stderr: string): string {
  const id = /^session (s_[0-9a-z]+)/m.exec(stderr)?.[1];
  assert.ok(id, `no session id in: ${stderr}`);
  return id;
}

async function events(daemon: TestDaemon, sessionId: string): Promise<Event[]> {
  const client = await daemon.client();
  try {
    return (await client.request(SessionEvents, { sessionId, limit: 10000 })).events;
  } finally {
    client.close();
  }
}

/** Text of the tool results in the request's last message. */
function lastToolResult(req: RecordedRequest): string {
  const last = req.body.messages.at(-1);
  const result = (last.content as any[]).find((b) => b.type === 'tool_result');
  return typeof result.content === 'string' ? result.content : result.content.map((b: any) => b.text).join('');
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

describe('agentd run', () => {
  const rig = suiteFixture(() => startAgentRig());
  const workspace = tempDir('agentd-run-ws-');

  it('streams the answer on stdout once, shows the tool call and its result, exits 0; --session continues', async () => {
    rig().emulator.script([
      reply.toolUse({ name: 'bash', input: { command: 'echo hello-from-the-sandbox' } }, { text: 'Let me run that.' }),
      (req) =>
        reply.text(`The command printed ${lastToolResult(req).split('\n')[0]!.trim()}, all done.`, {
          chunks: 6,
        }),
    ]);
    const first = agentdRun(rig().daemon, ['say hello', '--workspace', workspace, '--yes']);
    assert.equal(await first.done, 0, first.stderr());
    const answer = 'The command printed hello-from-the-sandbox, all done.';
    assert.equal(count(first.stdout(), answer), 1, first.stdout());
    assert.equal(count(first.stdout(), 'Let me run that.'), 1, first.stdout());
    assert.doesNotMatch(first.stdout(), /⏺/, 'tool activity stays off stdout');
    assert.match(first.stderr(), /^⏺ bash echo hello-from-the-sandbox$/m);
    assert.match(first.stderr(), /^ {2}⎿ {2}exit 0: hello-from-the-sandbox$/m);
    const sessionId = sessionOf(first.stderr());
    const log = await events(rig().daemon, sessionId);
    assert.equal(log.find((e) => e.type === 'session.created')?.data.workspace, workspace);
    assert.equal(log.at(-1)?.type, 'turn.completed');

    // The default reply echoes the prompt.
    const second = agentdRun(rig().daemon, ['and again', '--session', sessionId]);
    assert.equal(await second.done, 0, second.stderr());
    assert.equal(second.stdout().trim(), 'echo: and again');
    const later = await events(rig().daemon, sessionId);
    assert.equal(later.filter((e) => e.type === 'turn.completed').length, 2);
  });

  it('without a terminal and without --yes, denies tools with a message saying how to allow them', async () => {
    rig().emulator.script([
      reply.toolUse({ name: 'write_file', input: { path: 'x.txt', content: 'x' } }),
      (req) => reply.text(`Understood: ${lastToolResult(req)}`),
    ]);
    const run = agentdRun(rig().daemon, ['write x', '--workspace', workspace]);
    assert.equal(await run.done, 0, run.stderr());
    assert.match(run.stderr(), /denied write_file x\.txt: stdin is not a terminal.*pass --yes/);
    assert.match(run.stderr(), /⎿ {2}error \[denied\]: permission to run write_file was denied/);
    assert.match(run.stdout(), /^Understood: permission to run write_file was denied$/m);
    const log = await events(rig().daemon, sessionOf(run.stderr()));
    const resolved = log.find((e) => e.type === 'permission.resolved');
    assert.equal(resolved?.data.decision, 'deny');
  });

  it('exits 1 with the error on stderr when the turn fails', async () => {
    rig().emulator.script([reply.error(400, { message: 'prompt is too long: 250000 tokens > 200000 maximum' })]);
    const run = agentdRun(rig().daemon, ['fail please', '--workspace', workspace, '--yes']);
    assert.equal(await run.done, 1);
    assert.match(run.stderr(), /agentd run: turn failed: .*prompt is too long: 250000 tokens/);
    assert.equal(run.stdout(), '');
  });

  it('asks the daemon for its API key, not its own shell: a key only in the shell is no key', async () => {
    // A daemon started without a key, as when it was started before the export.
    await withFixture(startDaemon({ env: { ANTHROPIC_BASE_URL: rig().emulator.url, ANTHROPIC_API_KEY: '' } }), async (keyless) => {
      const client = await keyless.client();
      const before = (await client.request(SessionList, {})).sessions.length;
      const run = agentdRun(keyless, ['hello', '--workspace', workspace], { ANTHROPIC_API_KEY: API_KEY });
      assert.equal(await run.done, 1);
      assert.match(run.stderr(), /the daemon has no API key/);
      assert.match(run.stderr(), /This shell has ANTHROPIC_API_KEY, but the running daemon \(pid \d+\) started without it/);
      assert.match(run.stderr(), /agentd vault set ANTHROPIC_API_KEY/);
      assert.match(run.stderr(), /agentd demo/);
      assert.equal((await client.request(SessionList, {})).sessions.length, before, 'no session was created');
      // The vault is the daemon's other place: with the key there, a shell without one runs.
      const set = spawn(process.execPath, [AGENTD_BIN, 'vault', 'set', 'ANTHROPIC_API_KEY'], { env: { ...process.env, AGENTD_HOME: keyless.layout.home } });
      set.stdin.end(API_KEY);
      assert.equal(await new Promise((r) => set.on('close', r)), 0);
      const viaVault = agentdRun(keyless, ['through the vault', '--workspace', workspace], { ANTHROPIC_API_KEY: '' });
      assert.equal(await viaVault.done, 0, viaVault.stderr());
      assert.equal(viaVault.stdout().trim(), 'echo: through the vault');
      client.close();
    });
    // The other way round: the daemon has the key, the shell has none.
    const shellless = agentdRun(rig().daemon, ['no key here', '--workspace', workspace], { ANTHROPIC_API_KEY: '' });
    assert.equal(await shellless.done, 0, shellless.stderr());
    assert.equal(shellless.stdout().trim(), 'echo: no key here');
    const usage = agentdRun(rig().daemon, []);
    assert.equal(await usage.done, 2);
    assert.match(usage.stderr(), /missing "<prompt>"/);
  });

  it('Ctrl-C interrupts the running turn and exits 130', async () => {
    rig().emulator.script([reply.hang()]);
    const seen = rig().emulator.requests.length;
    const run = agentdRun(rig().daemon, ['wait forever', '--workspace', workspace, '--yes']);
    await rig().emulator.waitForRequests(seen + 1, 30_000);
    run.child.kill('SIGINT');
    assert.equal(await run.done, 130, run.stderr());
    assert.match(run.stderr(), /interrupting the turn/);
    assert.match(run.stderr(), /agentd run: interrupted/);
    const log = await events(rig().daemon, sessionOf(run.stderr()));
    assert.equal(log.at(-1)?.type, 'turn.interrupted');
  });

  it('on a terminal, asks permissions inline: y allows once, a allows the tool from then on', async () => {
    const bash = (command: string) => reply.toolUse({ name: 'bash', input: { command } });
    rig().emulator.script([bash('echo one'), bash('echo two'), bash('echo three'), reply.text('three commands ran')]);
    const term = agentdRunTty(rig().daemon, ['three commands', '--workspace', workspace]);
    await term.expect(/\? session s_[0-9a-z]+ "three commands": allow bash echo one {2}\[y\]es \/ \[n\]o \/ \[a\]lways for bash: /);
    term.type('y\r');
    await term.expect(/exit 0: one/);
    await term.expect(/: allow bash echo two/);
    term.type('a\r');
    await term.expect(/three commands ran/);
    assert.equal(await term.done, 0, term.screen());
    assert.doesNotMatch(term.screen(), /allow bash echo three/);
    const log = await events(rig().daemon, sessionOf(term.screen()));
    assert.deepEqual(
      log.filter((e) => e.type === 'permission.resolved').map((e) => e.data.decision),
      ['allow', 'allow_always'],
    );
    assert.equal(log.filter((e) => e.type === 'tool.result' && e.data.isError === false).length, 3);
  });

  it('on a terminal, Ctrl-C at a permission question interrupts the turn', async () => {
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo never' } })]);
    const term = agentdRunTty(rig().daemon, ['ask me', '--workspace', workspace]);
    await term.expect(/\? session s_[0-9a-z]+ "ask me": allow bash echo never/);
    term.type('\x03');
    assert.equal(await term.done, 130, term.screen());
    const log = await events(rig().daemon, sessionOf(term.screen()));
    assert.equal(log.at(-1)?.type, 'turn.interrupted');
    assert.ok(!log.some((e) => e.type === 'tool.started'), 'the tool never ran');
  });

  it('asks a network question on the terminal (--yes answers tools only), shows each egress decision, and --allow-host needs none', async () => {
    const upstream = await startRecordingUpstream();
    try {
      const curl = `curl -sS ${upstream.url}/from-run`;
      rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: curl } }), reply.text('fetched')]);
      const term = agentdRunTty(rig().daemon, ['fetch it', '--workspace', workspace, '--yes', '--network', 'ask']);
      await term.expect(new RegExp(`allow network access to 127\\.0\\.0\\.2:${upstream.port} \\(made by tool call toolu_\\w+\\)\\s+\\[y\\]es / \\[n\\]o / \\[a\\]lways for this host`));
      term.type('a\r');
      await term.expect(new RegExp(`· network: reached 127\\.0\\.0\\.2:${upstream.port} \\(answered allow_always by agentd-run`));
      await term.expect(/hello from \/from-run/);
      assert.equal(await term.done, 0, term.screen());

      // Without a terminal nobody answers: refused, with how to allow it; with --allow-host nothing is asked.
      rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: curl } }), reply.text('refused')]);
      const refused = agentdRun(rig().daemon, ['fetch it', '--workspace', workspace, '--yes', '--network', 'ask']);
      assert.equal(await refused.done, 0, refused.stderr());
      assert.match(refused.stderr(), /✗ denied network access to 127\.0\.0\.2:\d+ .*allow it with: agentd network s_\w+ --allow-host 127\.0\.0\.2:\d+/);
      assert.match(refused.stderr(), /✗ network: refused 127\.0\.0\.2:\d+ \(answered deny by agentd-run/);
      rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: curl } }), reply.text('allowed')]);
      const allowed = agentdRun(rig().daemon, ['fetch it', '--workspace', workspace, '--yes', '--allow-host', upstream.authority]);
      assert.equal(await allowed.done, 0, allowed.stderr());
      assert.match(allowed.stderr(), new RegExp(`· network: reached ${upstream.authority.replaceAll('.', '\\.')} \\(allow "`));
    } finally {
      await upstream.close();
    }
  });
});
