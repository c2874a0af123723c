// The persistent shell behind the bash tool, on its own (a real bash in a real PTY): the
// start-up races a sandbox's first command runs into when the machine is busy.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SandboxProcesses } from '../sandbox/tools/procs.js';
import { loadPty, PtyShell } from '../sandbox/tools/shell.js';

function newShell(t: { after(fn: () => void): void }): PtyShell {
  const dir = mkdtempSync(path.join(tmpdir(), 'agentd-shell-test-'));
  const shell = new PtyShell(dir, { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, 30_000, dir, new SandboxProcesses('descendants'), null);
  t.after(() => {
    shell.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return shell;
}

describe('the bash tool\'s shell', () => {
  it('a command that comes while the shell is still starting waits for it, and runs', async (t) => {
    const shell = newShell(t);
    // The host warms the shell when it is configured; on a busy machine the first command
    // arrives before the shell is ready. It used to take the half-started shell over: the start's
    // own wait then timed out, killed the shell, and the command hung to its timeout.
    await loadPty(); // as the host has (agentd/warm), so the start spawns the shell at once
    shell.warm();
    // Longer than the start's own wait (5 s), which is what killed it.
    const run = await shell.run('sleep 6; echo ran', 30_000, new AbortController().signal);
    assert.deepEqual([run.ended, run.exitCode, run.output.trim()], ['exited', 0, 'ran']);
    const again = await shell.run('echo again', 20_000, new AbortController().signal);
    assert.deepEqual([again.ended, again.output.trim()], ['exited', 'again']);
  });

  it('a shell that exits between commands is replaced at the next one', async (t) => {
    const shell = newShell(t);
    const exit = await shell.run('exit 3', 20_000, new AbortController().signal);
    assert.deepEqual([exit.ended, exit.exitCode], ['shell_exited', 3]);
    const next = await shell.run('echo fresh', 20_000, new AbortController().signal);
    assert.deepEqual([next.ended, next.output.trim()], ['exited', 'fresh']);
  });
});
