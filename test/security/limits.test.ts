/**
 * Attacks on the host's resources from inside a sandbox: a fork bomb and a memory hog. Each
 * sandbox is held to its own process and memory limits (a cgroup as root, rlimits in its own
 * user namespace as a user); the model is told which limit it hit, the same session's next
 * call works, and other sessions and the daemon never notice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { realpathSync } from 'node:fs';
import { ErrorCode } from '../../protocol/index.js';
import { tasksWorkingIn } from '../support/sandbox-fixtures.js';
import { until } from '../support/until.js';
import { securityMatrix, startSecurityRig } from './support/rig.js';
import { suiteFixture } from '../support/fixture.js';

const matrix = await securityMatrix();
const toldOfLimit = (r: { text: string }) => /process limit \(64 processes and threads\)/.test(r.text);

for (const { principal, level, pool, where } of matrix) {
  describe(`a sandbox is held to its limits (${where})`, () => {
    const rig = suiteFixture(() => startSecurityRig(principal, level, { pool }));

    it('a fork bomb hits the process limit: the model is told, the bomb is killed, the next call and other sessions work', async () => {
      const bombDir = realpathSync(rig().dir('bomb'));
      const sandbox = (workspace: string) => rig().session({ workspace, sandbox: { isolation: level, limits: { pids: 64 } } });
      const [bomb, other] = await Promise.all([sandbox(bombDir), sandbox(rig().dir('other'))]);
      assert.match((await rig().bash(other, 'echo warm')).text, /^warm\n/);
      const bombed = await rig().bash(bomb, ':(){ :|:& };:; echo bombed');
      // A loaded machine can run the next call before the bomb has grown: it must be at its limit first.
      await until(() => toldOfLimit(bombed) || tasksWorkingIn(bombDir) >= 48, 'the bomb to reach its process limit');
      const during = await rig().bash(other, 'echo other-alive');
      assert.equal(during.text, 'other-alive\n[exit code: 0]', 'another session is not affected');
      assert.equal(((await rig().rpc('daemon/status', {})).result as { pid: number }).pid, rig().daemon.proc.pid, 'the daemon answers');
      const next = await rig().bash(bomb, 'echo alive');
      assert.match(next.text, /alive/);
      // The limit shows in the bomb's own result (an error) or, when the bomb had not reached it
      // yet, in the next one, whose command still ran (not an error).
      const told = [bombed, next].filter(toldOfLimit);
      assert.equal(told.length, 1, `${bombed.text}\n---\n${next.text}`);
      if (told[0] === bombed) assert.equal(bombed.isError, true);
      // ps runs alone (in a pipe, grep would still be a forked bash while ps reads /proc).
      const clean = await rig().bash(bomb, 'echo clean; names=$(ps -e -o comm=); grep -cx bash <<< "$names"');
      assert.equal(clean.isError, false, clean.text);
      assert.match(clean.text, /^clean\n1\n\[exit code: 0\]$/, 'only the shell itself is left');
      const provisioned = (await rig().events(bomb)).find((e) => e.type === 'sandbox.provisioned')!;
      assert.equal((provisioned.data.limits as { pids: number }).pids, 64);
    });

    it('a memory hog is stopped at the memory limit, and the next call works', async () => {
      const hog = await rig().session({ workspace: rig().dir('hog'), sandbox: { isolation: level, limits: { memoryMb: 128 } } });
      const r = await rig().bash(hog, 'head -c 2000000000 /dev/zero | tail > /dev/null; echo status=$?');
      assert.doesNotMatch(r.text, /status=0/);
      const limits = (await rig().events(hog)).find((e) => e.type === 'sandbox.provisioned')!.data.limits as { memoryMb: number; memoryMechanism: string };
      assert.equal(limits.memoryMb, 128);
      if (limits.memoryMechanism.startsWith('cgroup')) {
        // A cgroup caps the sandbox as a whole and counts what the kernel killed: the model is told.
        assert.match(r.text, /status=137\n[\s\S]*reached its memory limit \(128 MB\): the kernel killed a process for memory/);
        assert.equal(r.isError, true);
      } else {
        // RLIMIT_DATA caps each process: the allocation fails and the program says so.
        assert.equal(limits.memoryMechanism, 'rlimit');
        assert.match(r.text, /memory exhausted/);
      }
      assert.equal((await rig().bash(hog, 'echo alive')).text, 'alive\n[exit code: 0]');
    });

    it('cannot fill the host\'s memory through its private /tmp and /dev/shm (tmpfs, together at most half the memory limit)', async () => {
      const filler = await rig().session({ workspace: rig().dir('filler'), sandbox: { isolation: level, limits: { memoryMb: 128 } } });
      const r = await rig().bash(filler, 'for d in /tmp /dev/shm; do head -c 300M /dev/zero > $d/fill; echo "$d status=$? size=$(stat -c %s $d/fill 2>/dev/null)"; rm -f $d/fill; done');
      for (const dir of ['/tmp', '/dev/shm']) {
        const size = Number(new RegExp(`${dir} status=\\d+ size=(\\d*)`).exec(r.text)?.[1] || 0);
        assert.ok(size <= 128 * 1024 * 1024, `${dir} held ${size} bytes: ${r.text}`);
        assert.doesNotMatch(r.text, new RegExp(`${dir} status=0 `));
      }
      assert.equal((await rig().bash(filler, 'echo alive')).text, 'alive\n[exit code: 0]');
    });

    it('refuses limits above the daemon maximum', async () => {
      for (const limits of [{ pids: 1_000_000 }, { memoryMb: 100_000_000 }]) {
        const reply = await rig().rpc('session/create', { workspace: rig().dir('greedy'), sandbox: { isolation: level, limits } });
        assert.equal(reply.error?.code, ErrorCode.LimitExceeded, JSON.stringify(reply));
      }
    });
  });
}
