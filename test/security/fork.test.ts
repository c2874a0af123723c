/**
 * Workspaces built from inside a sandbox to hurt the daemon when a session is forked: a FIFO
 * (a reader blocks on it forever), a socket, a sparse file that would be written out in full,
 * more data than the daemon allows, and a file the daemon cannot read. The fork copies what it
 * should, refuses what it must before writing anything, and leaves nothing behind on failure.
 */
import assert from 'node:assert/strict';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../protocol/index.js';
import { securityMatrix, startSecurityRig } from './support/rig.js';
import { suiteFixture } from '../support/fixture.js';

const matrix = await securityMatrix();
const MAX_BYTES = 64 * 1024 * 1024;

for (const { principal, level, pool, where } of matrix) {
  describe(`session/fork copies only what it should (${where})`, () => {
    const rig = suiteFixture(() => startSecurityRig(principal, level, { pool, env: { AGENTD_FORK_MAX_BYTES: String(MAX_BYTES) } }));

    const forks = () => {
      try {
        return readdirSync(rig().layout.workspaces);
      } catch {
        return [];
      }
    };
    /** A session in a workspace of its own (`dir`) that the shell command `setup` fills, and its fork; `before`: the forks there were. */
    const forkAfter = async (dir: string, setup: string) => {
      const session = await rig().session({ workspace: rig().dir(dir) });
      const made = await rig().bash(session, setup);
      const before = forks();
      return { session, made, before, forked: await rig().fork(session) };
    };
    const workspaceOf = async (sessionId: string) => String(((await rig().rpc('session/get', { sessionId })).result as { workspace: string }).workspace);

    it('copies files and symlinks (as links) and skips a FIFO and a socket', async () => {
      const { made, forked } = await forkAfter(
        'special',
        "mkfifo pipe; echo data > file.txt; ln -s file.txt link; mkdir -p sub/deep; echo y > sub/deep/y; node -e \"require('net').createServer().listen('sock', () => process.exit(0))\"; ls -1F",
      );
      assert.match(made.text, /^file\.txt\nlink@\npipe\|\nsock=\nsub\/\n/);
      assert.equal(forked.error, undefined, JSON.stringify(forked.error));
      const fork = String(forked.result!.sessionId);
      const copy = await workspaceOf(fork);
      assert.equal(readFileSync(join(copy, 'file.txt'), 'utf8'), 'data\n');
      assert.equal(readlinkSync(join(copy, 'link')), 'file.txt');
      assert.equal(readFileSync(join(copy, 'sub/deep/y'), 'utf8'), 'y\n');
      assert.deepEqual(readdirSync(copy).sort(), ['file.txt', 'link', 'sub']);
      const event = (await rig().events(fork)).find((e) => e.type === 'session.forked')!;
      assert.deepEqual((event.data.skipped as string[]).sort(), ['pipe', 'sock']);
      assert.equal((await rig().bash(fork, 'cat link')).text, 'data\n[exit code: 0]', 'the fork runs in its copy');
    });

    it('keeps sparse files sparse, a 1 TB one included', async () => {
      const { forked } = await forkAfter('sparse', 'truncate -s 2G sparse.bin; printf x | dd of=sparse.bin bs=1 seek=1000000 conv=notrunc 2>/dev/null; truncate -s 1T huge.bin');
      assert.equal(forked.error, undefined, JSON.stringify(forked.error));
      const copy = await workspaceOf(String(forked.result!.sessionId));
      const sparse = statSync(join(copy, 'sparse.bin'));
      const huge = statSync(join(copy, 'huge.bin'));
      assert.equal(sparse.size, 2 * 1024 ** 3);
      assert.equal(huge.size, 1024 ** 4);
      assert.ok(sparse.blocks * 512 <= 1024 * 1024, `sparse.bin allocates ${sparse.blocks * 512} bytes`);
      assert.ok(huge.blocks * 512 <= 1024 * 1024, `huge.bin allocates ${huge.blocks * 512} bytes`);
      const byte = Buffer.alloc(1);
      const fd = openSync(join(copy, 'sparse.bin'), 'r');
      readSync(fd, byte, 0, 1, 1_000_000);
      closeSync(fd);
      assert.equal(byte.toString(), 'x', 'the data in it was copied');
    });

    it('refuses a workspace with more data than the limit before copying, and leaves nothing behind', async () => {
      const { before, forked } = await forkAfter('big', 'head -c 80M /dev/urandom > big.bin; ls -s --block-size=M big.bin');
      assert.equal(forked.error?.code, ErrorCode.WorkspaceTooLarge, JSON.stringify(forked));
      assert.match(forked.error!.message, /holds 0\.08 GiB of data; a fork copies at most 0\.06 GiB/);
      assert.deepEqual(forks(), before, 'no partial copy');
    });

    if (principal.label === 'user') {
      it('removes a partial copy when the copy fails (a file the daemon cannot read)', async () => {
        const { session, before, forked } = await forkAfter('unreadable', 'for i in 1 2 3; do echo $i > ok-$i.txt; done; echo secret > locked; chmod 000 locked');
        assert.equal(forked.error?.code, ErrorCode.StorageFailure, JSON.stringify(forked));
        assert.match(forked.error!.message, /copying the workspace for the fork failed: cp failed: .*locked.*Permission denied/);
        assert.deepEqual(forks(), before, 'no partial copy');
        assert.ok(lstatSync(join(await workspaceOf(session), 'locked')).isFile(), 'the source is untouched');
      });
    }
  });
}
