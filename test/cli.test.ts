/** The agentd command as a user runs it: human output, --json, exit codes, messages that say what to do. */
import assert from 'node:assert/strict';
import { freshDatabase } from './support/postgres.js';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { AGENTD_BIN, runAgentd, tempHome } from './support/daemon.js';
import { tempDir } from './support/temp.js';
import { until } from './support/until.js';

describe('agentd CLI', () => {
  it('prints its version and help, and rejects unknown commands with exit 2', async () => {
    const layout = tempHome();
    const version = await runAgentd(layout, ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const help = await runAgentd(layout, ['--help']);
    assert.equal(help.code, 0);
    for (const command of ['daemon', 'stdio', 'status', 'stop', 'sessions', 'log']) assert.match(help.stdout, new RegExp(`\\n  ${command} `));
    const unknown = await runAgentd(layout, ['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command frobnicate/);
    const badFlag = await runAgentd(layout, ['log', 's_0000000000nosuchsess', '--from', 'minus-one']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /--from must be a non-negative integer/);
  });

  it('reports a daemon that is not running with exit 3, without starting one', async () => {
    const layout = tempHome();
    const status = await runAgentd(layout, ['status', '--json']);
    assert.equal(status.code, 3);
    assert.equal(JSON.parse(status.stdout).running, false);
    const stop = await runAgentd(layout, ['stop']);
    assert.equal(stop.code, 0);
    assert.match(stop.stdout, /no agentd daemon is running/);
  });

  it('creates a session, prompts it and prints its log, human and --json', async () => {
    const layout = tempHome();
    const workspace = tempDir('agentd-ws-');
    try {
      const created = await runAgentd(layout, ['new', '--workspace', workspace, '--title', 'cli test']);
      assert.equal(created.code, 0, created.stderr);
      const sessionId = created.stdout.trim();
      assert.match(sessionId, /^s_[0-9a-z]+$/);
      const prompted = await runAgentd(layout, ['prompt', sessionId, 'hello', 'there']);
      assert.match(prompted.stdout, /user message at seq 1/);
      const human = await runAgentd(layout, ['log', sessionId]);
      assert.match(human.stdout, /^\s+0 .*session\.created/m);
      assert.match(human.stdout, /^\s+1 .*user\.message\s+hello there$/m);
      const json = await runAgentd(layout, ['log', sessionId, '--from', '1', '--to', '2', '--json']);
      const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((e) => [e.seq, e.type, e.data.content]), [[1, 'user.message', 'hello there']]);
      const list = JSON.parse((await runAgentd(layout, ['sessions', '--json'])).stdout);
      assert.equal(list.sessions[0].sessionId, sessionId);
      assert.ok(['queued', 'running', 'idle'].includes(list.sessions[0].status));
      const status = JSON.parse((await runAgentd(layout, ['status', '--json'])).stdout);
      assert.equal(status.running, true);
      assert.equal(status.counts.sessions, 1);
    } finally {
      await runAgentd(layout, ['stop']);
    }
  });

  it('says what went wrong, on stderr with exit 1, for an unknown session', async () => {
    const layout = tempHome();
    try {
      const result = await runAgentd(layout, ['log', 's_0000000000nosuchsess']);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /unknown session s_0000000000nosuchsess \(SessionNotFound -33001\)/);
    } finally {
      await runAgentd(layout, ['stop']);
    }
  });

  it('stores a vault value from stdin, never argv, and never shows it again', async () => {
    const layout = tempHome();
    try {
      const set = await runAgentd(layout, ['vault', 'set', 'GITHUB_TOKEN', '--http', 'https://api.github.com', '--header', 'Authorization: Bearer {value}'], {
        input: 'ghp_cli_secret_value\n',
      });
      assert.equal(set.code, 0, set.stderr);
      const inArgv = await runAgentd(layout, ['vault', 'set', 'OTHER', 'the-secret']);
      assert.equal(inArgv.code, 2);
      assert.match(inArgv.stderr, /read from stdin/);
      const list = await runAgentd(layout, ['vault', 'list', '--json']);
      assert.deepEqual(JSON.parse(list.stdout).entries.map((e: { name: string }) => e.name), ['GITHUB_TOKEN']);
      assert.doesNotMatch(list.stdout, /ghp_cli_secret_value/);
      assert.equal((await runAgentd(layout, ['vault', 'delete', 'GITHUB_TOKEN'])).code, 0);
      assert.match((await runAgentd(layout, ['vault', 'list'])).stdout, /the vault is empty/);
    } finally {
      await runAgentd(layout, ['stop']);
    }
  });

  it('follows a log live with --follow until interrupted', async () => {
    const layout = tempHome();
    const workspace = tempDir('agentd-ws-');
    try {
      const sessionId = (await runAgentd(layout, ['new', '--workspace', workspace])).stdout.trim();
      const follower = spawn(process.execPath, [AGENTD_BIN, 'log', sessionId, '--follow', '--json'], {
        env: { ...process.env, AGENTD_HOME: layout.home },
      });
      let out = '';
      follower.stdout.on('data', (d) => (out += d));
      const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number });
      const userMessages = () => lines().filter((e) => (e as unknown as { type: string }).type === 'user.message').length;
      await until(() => lines().length >= 1, 'the first event');
      await runAgentd(layout, ['prompt', sessionId, 'one']);
      await runAgentd(layout, ['prompt', sessionId, 'two']);
      await until(() => userMessages() === 2, 'both user messages');
      follower.kill('SIGINT');
      const code = await new Promise((r) => follower.on('close', r));
      assert.equal(code, 0);
      const seqs = lines().map((e) => e.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i), 'dense from 0, no duplicate');
      assert.equal(userMessages(), 2);
    } finally {
      await runAgentd(layout, ['stop']);
    }
  });
});

describe('agentd doctor', () => {
  it('tells the truth about this machine, human and --json', async () => {
    const layout = tempHome();
    const result = await runAgentd(layout, ['doctor', '--json']);
    const report = JSON.parse(result.stdout) as { ok: boolean; isolation: string; findings: Array<{ name: string; ok: boolean }> };
    const byName = new Map(report.findings.map((f) => [f.name, f.ok]));
    assert.equal(byName.get('leveldb'), true);
    assert.equal(byName.get('node-pty'), true);
    // CI installs bubblewrap: the strong path must be the one found.
    assert.equal(report.isolation, 'bwrap');
    assert.equal(result.code, report.ok ? 0 : 1);
    const human = await runAgentd(layout, ['doctor']);
    assert.match(human.stdout, /sandboxes will use bwrap isolation/);
  });

  it('checks the shared log named by AGENTD_LOG, and fails without saying its password', async () => {
    const layout = tempHome();
    const url = await freshDatabase();
    const good = await runAgentd(layout, ['doctor'], { env: { AGENTD_LOG: url } });
    assert.match(good.stdout, /ok\s+shared log\s+postgres:\/\/.* schema agentd: 0 sessions, 0 held by 0 daemon\(s\) now/);
    const bad = await runAgentd(layout, ['doctor'], { env: { AGENTD_LOG: 'postgres://agentd:hunter2@127.0.0.1:1/x' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /FAIL\s+shared log\s+postgres:\/\/agentd:\*\*\*@127\.0\.0\.1:1\/x: .*ECONNREFUSED/);
    assert.ok(!bad.stdout.includes('hunter2'));
  });

  it('fails with exit 1 when the data dir is open to other users', async () => {
    const layout = tempHome();
    const { chmodSync } = await import('node:fs');
    chmodSync(layout.home, 0o755);
    const result = await runAgentd(layout, ['doctor']);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /FAIL\s+data dir .*chmod 700/);
  });
});

describe('agentd log --follow across a daemon restart', () => {
  it('resumes from the last seq it printed: no gap, no duplicate', async () => {
    const layout = tempHome();
    const workspace = tempDir('agentd-ws-');
    const sessionId = (await runAgentd(layout, ['new', '--workspace', workspace])).stdout.trim();
    const follower = spawn(process.execPath, [AGENTD_BIN, 'log', sessionId, '--follow', '--json'], { env: { ...process.env, AGENTD_HOME: layout.home } });
    let out = '';
    follower.stdout.on('data', (d) => (out += d));
    const seqs = () => out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number }).seq);
    try {
      await runAgentd(layout, ['prompt', sessionId, 'before the crash']);
      await until(() => seqs().includes(1), 'event 1');
      const pid = Number((JSON.parse((await runAgentd(layout, ['status', '--json'])).stdout) as { pid: number }).pid);
      process.kill(pid, 'SIGKILL');
      await runAgentd(layout, ['prompt', sessionId, 'after the restart']); // starts a new daemon
      const head = async () => (JSON.parse((await runAgentd(layout, ['log', sessionId, '--json'])).stdout.trim().split('\n').at(-1)!) as { seq: number }).seq + 1;
      const expected = await until(async () => {
        const now = await head();
        return seqs().length >= now && now;
      }, 'log --follow to print the log to its head');
      assert.deepEqual(seqs().slice(0, expected), Array.from({ length: expected }, (_, i) => i));
      assert.equal(new Set(seqs()).size, seqs().length, 'no duplicate');
    } finally {
      // Gone before the daemon is: a follower still running could start another after a crash.
      follower.kill('SIGINT');
      await new Promise((r) => (follower.exitCode !== null ? r(null) : follower.on('close', r)));
      await runAgentd(layout, ['stop']);
    }
  });
});

describe('agentd CLI conventions', () => {
  const ALL = ['daemon', 'stdio', 'mcp', 'acp', 'doctor', 'migrate', 'status', 'start', 'stop', 'sessions', 'new', 'prompt', 'steer', 'log', 'usage', 'attach', 'rename', 'budget', 'network', 'rollback', 'delete', 'archive', 'fork', 'vault', 'token', 'run', 'demo'];
  const SESSION = 's_0000000000nosuchsess';

  it('--help lists every command, and each command has its own --help', async () => {
    const layout = tempHome();
    const help = await runAgentd(layout, ['--help']);
    const listed = [...help.stdout.matchAll(/^ {2}(\S+) /gm)].map((m) => m[1]);
    assert.deepEqual(listed.sort(), [...ALL].sort());
    for (const command of ALL) {
      const own = await runAgentd(layout, [command, '--help']);
      assert.equal(own.code, 0, `${command} --help: ${own.stderr}`);
      assert.match(own.stdout + own.stderr, new RegExp(`usage: agentd ${command}`));
    }
  });

  it('refuses unknown options and extra arguments on every command with exit 2, before doing anything', async () => {
    const layout = tempHome();
    const extra: Record<string, string[]> = {
      daemon: ['now'], stdio: ['x'], mcp: ['x'], acp: ['x'], doctor: ['x'], migrate: ['--to', 'postgres://h/db', 'x'],
      status: ['x'], start: ['x'], stop: ['now'], sessions: ['x'], new: ['x'], log: [SESSION, 'x'], attach: [SESSION, 'x'],
      archive: [SESSION, 'x'], fork: [SESSION, 'x', '--at', '1'], vault: ['list', 'x'], token: ['list', 'x'], demo: ['x'],
      usage: [SESSION, 'x'], rollback: [SESSION, 'x'], delete: [SESSION, 'x'], network: [SESSION, 'x'],
    };
    for (const command of ALL) {
      const bogus = await runAgentd(layout, [command, ...(command === 'run' ? ['hi'] : []), '--bogus']);
      assert.equal(bogus.code, 2, `${command} --bogus: ${bogus.stdout}${bogus.stderr}`);
      assert.match(bogus.stderr, /unknown option --bogus/, command);
      const args = extra[command];
      if (!args) continue; // prompt, steer, rename and run take text
      const more = await runAgentd(layout, [command, ...args]);
      assert.equal(more.code, 2, `${command} ${args.join(' ')}: ${more.stdout}${more.stderr}`);
      assert.match(more.stderr, /unexpected arguments?: (x|now)/, command);
    }
    // Nothing above started a daemon.
    assert.equal((await runAgentd(layout, ['status'])).code, 3);
  });

  it('says what changed, reports usage errors the daemon catches in its own words with exit 2, and where a log ends', async () => {
    const layout = tempHome();
    try {
      const sessionId = (await runAgentd(layout, ['new', '--workspace', tempDir('agentd-ws-')])).stdout.trim();
      const usage: Array<[string[], RegExp]> = [
        [['fork', sessionId, '--at', '0'], /--at must be a positive integer, not 0/],
        [['fork', sessionId, '--at', '99'], /fork position 99 is past the head 1/],
        [['sessions', '--limit', '0'], /--limit must be a positive integer, not 0/],
        [['sessions', '--limit', '5000'], /--limit: .*1000/],
        [['vault', 'delete', 'bad/name'], /NAME: a credential name is letters, digits and _, not "bad\/name"/],
        [['log', 's_bad'], /<sessionId>: a session id looks like s_<letters and digits>, not "s_bad"/],
        [['prompt', 'nonsense', 'hello'], /<sessionId>: a session id looks like/],
        [['run', '--session', 'nope', 'hello'], /--session: a session id looks like/],
      ];
      for (const [args, says] of usage) {
        const result = await runAgentd(layout, args);
        assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, says);
        assert.doesNotMatch(result.stderr, /session\/|vault\/|InvalidParams|-326/, 'no protocol words');
      }
      const from = await runAgentd(layout, ['log', sessionId, '--from', '50']);
      assert.equal(from.code, 0);
      assert.equal(from.stdout, '');
      assert.match(from.stderr, new RegExp(`no event at --from 50: the log of ${sessionId} ends at seq 0`));

      const archived = await runAgentd(layout, ['archive', sessionId]);
      assert.equal(archived.code, 0, archived.stderr);
      assert.match(archived.stdout, new RegExp(`^archived ${sessionId}: .*\\n$`));
      await runAgentd(layout, ['vault', 'set', 'GONE'], { input: 'value-gone\n' });
      const deleted = await runAgentd(layout, ['vault', 'delete', 'GONE']);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(deleted.stdout, 'deleted GONE\n');
    } finally {
      await runAgentd(layout, ['stop']);
    }
  });
});
