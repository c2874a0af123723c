/**
 * Processes that try to outlive what started them: daemonised children of a call that times
 * out or is interrupted, and background jobs of a session that is archived. The kill is by
 * start time in the sandbox's pid namespace (not by process group or session), and an
 * archive closes the sandbox at once. Checked from outside, in the real process table.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { processesTagged, waitUntilGone } from '../support/sandbox-fixtures.js';
import { securityMatrix, startSecurityRig } from './support/rig.js';
import { until } from '../support/until.js';
import { suiteFixture } from '../support/fixture.js';

const matrix = await securityMatrix();

/**
 * Starts four processes that leave the shell's session and process group every way a shell can,
 * each with `mark` in its environment (the shell itself does not get it).
 */
const escapes = (mark: string) =>
  `(export ${mark}; setsid sleep 1000 & nohup sleep 1001 >/dev/null 2>&1 & (setsid bash -c "sleep 1002 & disown" &); (trap "" HUP INT TERM; exec sleep 1003) &);`;

for (const { principal, level, pool, where } of matrix) {
  describe(`nothing outlives its call or its session (${where})`, () => {
    const rig = suiteFixture(() => startSecurityRig(principal, level, { pool }));

    it('a timeout kills every process the call started, daemonised ones too, and says so', async () => {
      const session = await rig().session({ workspace: rig().dir('timeout') });
      const mark = `AGENTD_MARK=${randomBytes(8).toString('hex')}`;
      await rig().bash(session, 'sleep 999 & echo earlier'); // a job of an earlier call stays
      const r = await rig().bash(session, `${escapes(mark)} echo started; sleep 1004`, 3_000);
      assert.match(r.text, /^started\n\[timed out after 3000 ms; the command and every process it started were killed; the shell is still running\]$/);
      assert.equal(r.errorKind, 'timeout');
      assert.deepEqual(processesTagged(mark), [], 'none of them runs any more');
      const inside = await rig().bash(session, 'ps -e -o args= | grep -c "^sleep 10"; ps -e -o args= | grep -c "^sleep 999"');
      assert.equal(inside.text, '0\n1\n[exit code: 0]', 'the earlier job is left alone');
    });

    it('an interrupt kills every process the call started, daemonised ones too', async () => {
      const session = await rig().session({ workspace: rig().dir('interrupt') });
      const mark = `AGENTD_MARK=${randomBytes(8).toString('hex')}`;
      const seq = await rig().start(session, `${escapes(mark)} sleep 1004`);
      await until(() => processesTagged(mark).length >= 4, 'the four escaped processes to start');
      assert.deepEqual((await rig().rpc('session/interrupt', { sessionId: session })).result, { interrupted: true });
      const r = await rig().result(session, seq);
      assert.equal(r.errorKind, 'interrupted');
      assert.deepEqual(await waitUntilGone(mark), []);
    });

    it('archiving a session kills its background jobs at once, with its sandbox', async () => {
      const session = await rig().session({ workspace: rig().dir('archive') });
      const mark = `AGENTD_MARK=${randomBytes(8).toString('hex')}`;
      const r = await rig().bash(session, `${escapes(mark)} (export ${mark}; while :; do sleep 0.2; done) & echo left-running`);
      assert.match(r.text, /^left-running\n\[exit code: 0\]$/);
      await until(() => processesTagged(mark).length >= 5, 'the five escaped processes to start');
      assert.deepEqual((await rig().rpc('session/archive', { sessionId: session })).result, {});
      assert.deepEqual(processesTagged(mark), [], 'gone when archive answers, not at idle eviction');
    });
  });
}
