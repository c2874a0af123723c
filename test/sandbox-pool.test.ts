/**
 * The warm sandbox pool (`sandbox.pool`), through the real daemon and the model emulator. As
 * root: a pooled sandbox is exactly its session's (its workspace at its own path, the data dir
 * masked, the same mount table as a cold one), the pool runs out and sessions carry on cold, a
 * pooled host that dies is replaced and never handed out, one handed out with its configuration
 * on the way that dies or refuses it loses only its calls (sandbox_lost), refusals in a row stop
 * the pool, and fifty sessions at once each stay in their own workspace. As an ordinary user the
 * daemon keeps no pool and says why.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Event } from '../protocol/index.js';
import { HOST_ENTRY } from '../sandbox/local-launch.js';
import { listProcesses } from '../sandbox/tools/procs.js';
import { createLocalProvider } from '../sandbox/provider.js';
import type { PoolStatus, Sandbox } from '../sandbox/types.js';
import { runAgentd, tempHome } from './support/daemon.js';
import { tempDir } from './support/temp.js';
import { until } from './support/until.js';
import { securityMatrix, startSecurityRig, type SecurityRig } from './security/support/rig.js';
import { suiteFixture } from './support/fixture.js';

const root = process.getuid?.() === 0;
const matrix = await securityMatrix();

async function poolStatus(rig: SecurityRig): Promise<PoolStatus> {
  const status = (await rig.rpc('daemon/status', {})).result as { sandboxPool?: PoolStatus };
  assert.ok(status.sandboxPool, 'daemon/status shows the pool');
  return status.sandboxPool;
}

const provisionedIn = (events: Event[]) => events.filter((e) => e.type === 'sandbox.provisioned');
const lastResult = (events: Event[]) => {
  const result = events.filter((e) => e.type === 'tool.result').at(-1)!;
  return (result.data.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n');
};

/**
 * Pooled tool hosts (outside pids) of the daemon `daemonPid`: hosts below it still in their
 * sandbox's root dir (a bound one works in its workspace).
 */
function hostsOf(daemonPid: number): number[] {
  const processes = listProcesses().filter((p) => p.state !== 'Z');
  const parent = new Map(processes.map((p) => [p.pid, p.ppid]));
  const below = (pid: number) => {
    for (let at = parent.get(pid); at !== undefined && at > 1; at = parent.get(at)) if (at === daemonPid) return true;
    return false;
  };
  const pooled = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === HOST_ENTRY && readlinkSync(`/proc/${pid}/cwd`) === '/';
    } catch {
      return false; // gone
    }
  };
  return processes.map((p) => p.pid).filter((pid) => below(pid) && pooled(pid));
}

/** A process's nice value, from its stat (the fields after the command name's closing parenthesis). */
const niceOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').at(-1)!.trim().split(' ')[16]);

if (root) {
  describe('warm sandbox pool (daemon as root)', () => {
    const POOL = 2;
    const rig = suiteFixture(() => startSecurityRig(matrix[0]!.principal, 'bwrap', { pool: POOL }));

    it('binds a pooled sandbox to its session: the workspace at its own path, the data dir masked, the daemon\'s limits', async () => {
      writeFileSync(join(rig().home, 'note.txt'), 'mine');
      const session = await rig().session();
      const r = await rig().bash(session, 'pwd; cat note.txt; echo; ls -A .agentd | wc -l; echo made > made.txt');
      assert.equal(r.text, `${realpathSync(rig().home)}\nmine\n0\n[exit code: 0]`);
      assert.equal(readFileSync(join(rig().home, 'made.txt'), 'utf8'), 'made\n');
      const [provisioned] = provisionedIn(await rig().events(session));
      assert.equal(provisioned!.data.pooled, true);
      const limits = provisioned!.data.limits as { pids: number; memoryMb: number };
      assert.deepEqual([limits.pids, limits.memoryMb], [1024, 4096]);
    });

    it('starts pooled hosts at the lowest CPU priority and runs a bound one, and what it starts, at the usual', async () => {
      await until(async () => (await poolStatus(rig())).ready === POOL, 'the pool is full');
      const waiting = hostsOf(rig().daemon.proc.pid!);
      assert.equal(waiting.length, POOL);
      for (const pid of waiting) assert.equal(niceOf(pid), 19, `pooled host ${pid} waits at nice 19`);
      const session = await rig().session({ workspace: rig().dir('priority') });
      const r = await rig().bash(session, 'nice; for t in /proc/1/task/* /proc/2/task/*; do cut -d")" -f2 $t/stat | cut -d" " -f18; done | sort -u');
      assert.equal(r.text, '0\n0\n[exit code: 0]', 'the shell, and every thread of the sandbox\'s init and host, at nice 0');
    });

    it('runs out: more sessions than the pool holds all get working sandboxes, the rest provisioned cold', async () => {
      const before = await poolStatus(rig());
      const sessions = await Promise.all(Array.from({ length: 6 }, (_, i) => rig().session({ workspace: rig().dir(`exhaust-${i}`) })));
      // rig.start waits for a full pool, so all six ask for a sandbox at about the same moment.
      await Promise.all(sessions.map((s, i) => rig().start(s, `echo ok-${i}`)));
      const pooled: boolean[] = [];
      for (const [i, session] of sessions.entries()) {
        const events = await rig().settle(session);
        assert.equal(lastResult(events), `ok-${i}\n[exit code: 0]`);
        pooled.push(...provisionedIn(events).map((e) => e.data.pooled === true));
      }
      assert.equal(pooled.length, 6, 'one sandbox per session');
      assert.ok(pooled.filter(Boolean).length >= POOL, `the pool's sandboxes were used: ${pooled}`);
      assert.ok(pooled.some((p) => !p), `the sessions beyond the pool got cold sandboxes: ${pooled}`);
      const after = await poolStatus(rig());
      assert.equal(after.served - before.served + after.cold - before.cold, 6);
      assert.equal(after.served - before.served, pooled.filter(Boolean).length);
    });

    it('replaces a pooled host that dies, and never hands out a dead one', async () => {
      await until(async () => (await poolStatus(rig())).ready === POOL, 'the pool is full');
      const before = await poolStatus(rig());
      const [first] = hostsOf(rig().daemon.proc.pid!);
      assert.ok(first, 'a pooled host is running');
      process.kill(first, 'SIGKILL');
      await until(async () => {
        const now = await poolStatus(rig());
        return now.replaced > before.replaced && now.ready === POOL;
      }, 'the dead host to be replaced');
      // Both pooled hosts die, and a session asks for a sandbox at once (eagerly, at creation).
      const doomed = hostsOf(rig().daemon.proc.pid!);
      assert.equal(doomed.length, POOL);
      for (const pid of doomed) process.kill(pid, 'SIGKILL');
      const session = await rig().session({ workspace: rig().dir('after-deaths'), sandbox: { isolation: 'bwrap', eager: true } });
      // Cold or from a fresh pooled one (rig.bash would insist on pooled).
      await rig().start(session, 'echo alive');
      const events = await rig().settle(session);
      assert.equal(lastResult(events), 'alive\n[exit code: 0]');
      assert.equal(provisionedIn(events).length, 1);
      assert.equal(events.filter((e) => e.type === 'sandbox.lost').length, 0, 'the session never had a dead sandbox');
      await until(async () => {
        const now = await poolStatus(rig());
        return now.replaced >= before.replaced + 1 + POOL && now.ready === POOL;
      }, 'every dead host to be replaced');
    });
  });

  describe('a burst of fifty sessions (daemon as root, pool of 20)', () => {
    const rig = suiteFixture(() => startSecurityRig(matrix[0]!.principal, 'bwrap', { pool: 20 }));

    it('completes every tool call, each in a sandbox of its own, confined to its own workspace', async () => {
      const count = 50;
      const workspaces = Array.from({ length: count }, (_, i) => rig().dir(`burst-${i}`));
      const sessions = await Promise.all(workspaces.map((workspace) => rig().session({ workspace })));
      // Each writes its marker, then lists what it can see of the others' (only its own workspace is there).
      const command = (i: number) => `echo ${i} > mine && pwd && ls -A .. && cat ../*/mine && ls /proc | grep -c '^[0-9]'`;
      await Promise.all(sessions.map((s, i) => rig().start(s, command(i))));
      const ids = new Set<string>();
      for (const [i, session] of sessions.entries()) {
        const events = await rig().settle(session);
        const workspace = realpathSync(workspaces[i]!);
        const [pwd, listed, marker, ...rest] = lastResult(events).split('\n');
        assert.deepEqual([pwd, listed, marker], [workspace, workspace.split('/').at(-1), String(i)], `session ${i}: ${lastResult(events)}`);
        assert.ok(Number(rest[0]) < 10, `session ${i} sees only its own processes: ${rest[0]}`);
        assert.equal(readFileSync(join(workspace, 'mine'), 'utf8'), `${i}\n`);
        assert.deepEqual(readdirSync(workspace), ['mine'], 'nothing else was written into it');
        const provisioned = provisionedIn(events);
        assert.equal(provisioned.length, 1);
        ids.add(String(provisioned[0]!.data.sandboxId));
      }
      assert.equal(ids.size, count, 'no sandbox served two sessions');
      const status = await poolStatus(rig());
      assert.equal(status.served + status.cold, count);
      assert.ok(status.served >= 20, `the pool served its sandboxes: ${JSON.stringify(status)}`);
    });
  });

  describe('pooled and cold sandboxes (provider, as root)', () => {
    it('have the same mount table: the same mounts, sources and flags (the pooled one mounts the workspace last)', async (t) => {
      const dir = realpathSync(tempDir('agentd-pool-mounts-'));
      const home = join(dir, 'home');
      mkdirSync(join(home, '.agentd'), { recursive: true });
      writeFileSync(join(home, '.agentd', 'secret'), 'secret');
      const spec = { workspace: home, hide: [join(home, '.agentd')], limits: { pids: 512, memoryMb: 1024 } };
      // The pool's default limits differ from the session's: binding changes them.
      const pooledProvider = createLocalProvider({ pool: { size: 1, hide: spec.hide, limits: { pids: 1024, memoryMb: 2048 } } });
      const coldProvider = createLocalProvider();
      const opened: Sandbox[] = [];
      t.after(async () => {
        await Promise.all(opened.map((s) => s.close()));
        await Promise.all([pooledProvider.close?.(), coldProvider.close?.()]);
      });
      await until(async () => pooledProvider.pool!().ready === 1 || pooledProvider.pool!().disabled !== undefined, 'the pool is full');
      assert.equal(pooledProvider.pool!().disabled, undefined);
      const pooled = await pooledProvider.provision({ sessionId: 'pooled', ...spec });
      opened.push(pooled);
      const cold = await coldProvider.provision({ sessionId: 'cold', ...spec });
      opened.push(cold);
      assert.deepEqual([pooled.pooled, cold.pooled], [true, false]);
      // Mount ids, devices and peer groups differ between any two sandboxes; the rest must not.
      const table = async (sandbox: Sandbox) => {
        const r = await sandbox.execute('bash', { command: 'cat /proc/self/mountinfo' });
        const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
        return text
          .split('\n')
          .filter((line) => / - /.test(line))
          .map((line) => {
            const [before, after] = line.split(' - ');
            const fields = before!.split(' ');
            return `${fields[3]} ${fields[4]} ${fields[5]} - ${after}`;
          })
          .sort();
      };
      assert.deepEqual(await table(pooled), await table(cold));
      assert.deepEqual(pooled.limits, cold.limits);
    });

    it('hands a pooled sandbox out with its configuration on the way: one killed right then loses only its first call', async (t) => {
      const shape = { hide: [], limits: { pids: 512, memoryMb: 1024 } };
      const provider = createLocalProvider({ pool: { size: 1, ...shape } });
      const opened: Sandbox[] = [];
      t.after(async () => {
        await Promise.all(opened.map((s) => s.close()));
        await provider.close?.();
      });
      await until(async () => provider.pool!().ready === 1, 'the pool is full');
      const [host] = hostsOf(process.pid);
      assert.ok(host, 'the pooled host is running');
      const doomed = await provider.provision({ sessionId: 'doomed', workspace: tempDir('agentd-pool-doomed-'), ...shape });
      opened.push(doomed);
      assert.equal(doomed.pooled, true);
      process.kill(host, 'SIGKILL'); // before its configuration's answer can have been read
      const lost = await doomed.execute('bash', { command: 'echo never' });
      assert.equal(lost.errorKind, 'sandbox_lost', JSON.stringify(lost));
      const workspace = realpathSync(tempDir('agentd-pool-next-'));
      const next = await provider.provision({ sessionId: 'next', workspace, ...shape });
      opened.push(next);
      const r = await next.execute('bash', { command: 'pwd' });
      assert.equal(r.content.map((c) => (c.type === 'text' ? c.text : '')).join(''), `${workspace}\n[exit code: 0]`);
      assert.equal(provider.pool!().disabled, undefined, 'one lost host does not stop the pool');
    });

    it('stops the pool after hosts in a row refuse their configuration, each losing only its own first call', async (t) => {
      const shape = { hide: [], limits: { pids: 512, memoryMb: 1024 } };
      const provider = createLocalProvider({ pool: { size: 1, ...shape } });
      const opened: Sandbox[] = [];
      // A workspace nobody may enter: the daemon (root) sees it, the host (no capabilities) cannot chdir into it.
      const locked = tempDir('agentd-pool-locked-');
      chmodSync(locked, 0o000);
      t.after(async () => {
        chmodSync(locked, 0o755);
        await Promise.all(opened.map((s) => s.close()));
        await provider.close?.();
      });
      for (let i = 0; provider.pool!().disabled === undefined; i++) {
        assert.ok(i < 5, `the pool is still on after ${i} refusals: ${JSON.stringify(provider.pool!())}`);
        await until(async () => provider.pool!().ready === 1, 'the pool is full');
        const sandbox = await provider.provision({ sessionId: `locked-${i}`, workspace: locked, ...shape });
        opened.push(sandbox);
        assert.equal(sandbox.pooled, true);
        const r = await sandbox.execute('bash', { command: 'echo never' });
        assert.equal(r.errorKind, 'sandbox_lost', JSON.stringify(r));
        assert.match(r.content.map((c) => (c.type === 'text' ? c.text : '')).join(''), /did not accept its configuration/);
        await until(async () => !sandbox.alive, 'the refusing host is gone');
      }
      assert.match(provider.pool!().disabled!, /stopped after 3 failures in a row.*did not accept its configuration/);
      // Cold from now on: the refusal is the provision's error, as for any cold sandbox.
      await assert.rejects(provider.provision({ sessionId: 'locked-cold', workspace: locked, ...shape }));
    });
  });
}

describe('sandbox.pool in the daemon configuration', () => {
  it('is validated: a negative or huge pool is refused, naming the field or variable', async () => {
    const layout = tempHome();
    writeFileSync(layout.config, JSON.stringify({ sandbox: { pool: -1 } }));
    const bad = await runAgentd(layout, ['daemon']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /config\.json: sandbox\.pool: /);
    rmSync(layout.config);
    const huge = await runAgentd(layout, ['daemon'], { env: { AGENTD_SANDBOX_POOL: '100000' } });
    assert.equal(huge.code, 1);
    assert.match(huge.stderr, /AGENTD_SANDBOX_POOL: at most 1024/);
    rmSync(layout.home, { recursive: true, force: true });
  });
});

const ordinaryUser = matrix.find((c) => c.principal.uid !== 0);
// Root with a checkout nobody can read (under /root) has no ordinary user to run as; the security suite says so on stderr.
describe('warm sandbox pool, daemon as an ordinary user', { skip: !ordinaryUser && 'no ordinary user can read this checkout' }, () => {
  let rig: SecurityRig;
  before(async () => {
    const user = ordinaryUser!;
    rig = await startSecurityRig(user.principal, user.level, { env: { AGENTD_SANDBOX_POOL: '2' } });
  });
  after(() => rig?.dispose());

  it('keeps no pool, says why in daemon/status, and provisions cold', async () => {
    const status = await poolStatus(rig);
    assert.equal(status.size, 2);
    await until(async () => (await poolStatus(rig)).disabled !== undefined, 'the pool says why it is off');
    assert.match((await poolStatus(rig)).disabled!, /not root/);
    const session = await rig.session({ workspace: rig.dir('cold') });
    assert.equal((await rig.bash(session, 'echo cold')).text, 'cold\n[exit code: 0]');
    assert.equal(provisionedIn(await rig.events(session))[0]!.data.pooled, false);
    assert.equal((await poolStatus(rig)).ready, 0);
  });
});
