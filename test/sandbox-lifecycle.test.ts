// Sandboxes as cattle: interrupt, time out, die mid-call, get replaced, and run fifty at once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createLocalProvider, probeIsolation } from '../sandbox/provider.js';
import type { IsolationLevel } from '../sandbox/types.js';
import { QUIET_MS } from '../sandbox/host/idle-memory.js';
import { bash, hostPid, makePlayground, processesTagged, textOf, waitUntilGone } from './support/sandbox-fixtures.js';

const provider = createLocalProvider();
const report = await probeIsolation();
const levels = (['bwrap', 'namespaces', 'none'] as IsolationLevel[]).filter((l) => report.levels[l].ok);

describe('sandbox lifecycle', () => {
  it('an aborted call resolves as interrupted and kills the command with its background jobs', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    const sb = await provider.provision({ sessionId: 'abort', workspace: pg.workspace, env: { AGENTD_TEST_TAG: pg.tag } });
    try {
      const controller = new AbortController();
      const call = sb.execute('bash', { command: 'sleep 1000 & echo $! > bg.pid; sleep 1000' }, { signal: controller.signal });
      await waitFor(() => readFileOr(path.join(pg.workspace, 'bg.pid')) !== '');
      controller.abort();
      const r = await call;
      assert.equal(r.isError, true);
      assert.equal(r.errorKind, 'interrupted');
      const check = await bash(sb, 'kill -0 $(cat bg.pid) 2>/dev/null && echo alive || echo dead; grep -lx sleep /proc/[0-9]*/comm 2>/dev/null || echo no-sleep');
      assert.equal(textOf(check), 'dead\nno-sleep\n[exit code: 0]');
      const already = new AbortController();
      already.abort();
      assert.equal((await sb.execute('bash', { command: 'echo never' }, { signal: already.signal })).errorKind, 'interrupted');
    } finally {
      await sb.close();
    }
  });

  it('a host quiet for a while gives back the memory its calls grew', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    writeFileSync(path.join(pg.workspace, 'big.txt'), 'a line of text in a file read a hundred times\n'.repeat(8_000));
    const sb = await provider.provision({ sessionId: 'quiet', workspace: pg.workspace, env: { AGENTD_TEST_TAG: pg.tag } });
    try {
      const anon = () => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${hostPid(pg.tag)}/status`, 'utf8'))![1]);
      for (let i = 0; i < 100; i++) await sb.execute('read_file', { path: 'big.txt' });
      const grown = anon();
      // V8 keeps the young generation those calls grew until the host's quiet-spell collection.
      await waitFor(() => anon() < grown / 2, QUIET_MS + 5_000);
      assert.match(textOf(await sb.execute('read_file', { path: 'big.txt' })), /a line of text/, 'and it still works');
    } finally {
      await sb.close();
    }
  });

  it('a call past its timeoutMs resolves as timeout and the sandbox keeps working', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    const sb = await provider.provision({ sessionId: 'timeout', workspace: pg.workspace });
    try {
      const r = await sb.execute('bash', { command: 'sleep 1000' }, { timeoutMs: 300 });
      assert.equal(r.errorKind, 'timeout');
      assert.equal(textOf(await bash(sb, 'echo fine')), 'fine\n[exit code: 0]');
    } finally {
      await sb.close();
    }
  });

  for (const level of levels) {
    it(`kill -9 of the host mid-call gives sandbox_lost, and a fresh sandbox on the same workspace works (${level})`, async (t) => {
      const pg = makePlayground();
      t.after(() => pg.cleanup());
      const sb = await provider.provision({ sessionId: 'lost', workspace: pg.workspace, isolation: level, env: { AGENTD_TEST_TAG: pg.tag } });
      await bash(sb, 'echo persisted > kept.txt; export SHELL_STATE=old');
      const call = sb.execute('bash', { command: 'echo started > started.txt; sleep 1000' });
      await waitFor(() => readFileOr(path.join(pg.workspace, 'started.txt')) !== '');
      // The sleep itself, not only the echo before it: at `none` (no pid namespace, and no cgroup
      // for a spec without limits) a command the shell is still forking when its host dies can
      // miss the terminal's hangup and outlive the sandbox; the point here is a call mid-run.
      await waitFor(() => processesTagged(pg.tag).some((pid) => readFileOr(`/proc/${pid}/cmdline`) === 'sleep\u00001000\u0000'));
      const killedAt = performance.now();
      process.kill(hostPid(pg.tag), 'SIGKILL');
      const r = await withDeadline(call, 10_000);
      const took = performance.now() - killedAt;
      assert.equal(r.isError, true);
      assert.equal(r.errorKind, 'sandbox_lost');
      console.log(`# ${level}: sandbox_lost reported ${took.toFixed(0)} ms after kill -9 (target: within 1000 ms)`);
      const ended = await withDeadline(sb.ended, 10_000);
      assert.match(ended.reason, /sandbox host (exited|killed)/);
      assert.equal((await bash(sb, 'echo too late')).errorKind, 'sandbox_lost');
      assert.deepEqual(await waitUntilGone(pg.tag), []);

      const fresh = await provider.provision({ sessionId: 'lost', workspace: pg.workspace, isolation: level });
      try {
        assert.equal(textOf(await bash(fresh, 'cat kept.txt; echo "[$SHELL_STATE]"')), 'persisted\n[]\n[exit code: 0]');
      } finally {
        await fresh.close();
      }
    });
  }

  it('a host silent past hungAfterMs is killed: the call is sandbox_lost, nothing of it runs on, a fresh sandbox works', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    const sb = await provider.provision({ sessionId: 'silent', workspace: pg.workspace, env: { AGENTD_TEST_TAG: pg.tag } });
    const call = sb.execute('bash', { command: 'echo started > started.txt; sleep 1000' }, { hungAfterMs: 2_000 });
    await waitFor(() => readFileOr(path.join(pg.workspace, 'started.txt')) !== '');
    process.kill(hostPid(pg.tag), 'SIGSTOP'); // alive, but it will never answer
    const r = await withDeadline(call, 30_000);
    assert.equal(r.errorKind, 'sandbox_lost', textOf(r));
    assert.match(textOf(r), /did not answer a bash call within 2 s/);
    assert.equal(sb.alive, false);
    assert.match((await withDeadline(sb.ended, 30_000)).reason, /did not answer a bash call within 2 s; killed/);
    assert.deepEqual(await waitUntilGone(pg.tag), []);
    assert.equal((await bash(sb, 'echo too late')).errorKind, 'sandbox_lost');
    const fresh = await provider.provision({ sessionId: 'silent', workspace: pg.workspace });
    try {
      assert.equal(textOf(await bash(fresh, 'cat started.txt')), 'started\n[exit code: 0]');
    } finally {
      await fresh.close();
    }
  });

  for (const level of levels.filter((l) => l !== 'none')) {
    it(`close of a host that does not stop kills it, and returns only once nothing of its sandbox runs (${level})`, async (t) => {
      const pg = makePlayground();
      t.after(() => pg.cleanup());
      const sb = await provider.provision({ sessionId: 'hung', workspace: pg.workspace, isolation: level, env: { AGENTD_TEST_TAG: pg.tag } });
      await bash(sb, 'sleep 1000 & (setsid sleep 1001 &)');
      const host = hostPid(pg.tag);
      process.kill(host, 'SIGSTOP'); // it cannot answer close: the grace runs out and its launcher is killed
      await sb.close();
      assert.deepEqual(processesTagged(pg.tag), [], 'gone when close resolves, not a moment later');
      assert.deepEqual(await sb.ended, { reason: 'closed' });
    });
  }

  it('what a process killed with -9 left in the temp dir (a plain sandbox\'s scratch) is swept by the next provider', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    // Another process provisions an unisolated sandbox (its scratch dir is outside) and is killed mid-way.
    const script = `const { createLocalProvider } = await import(${JSON.stringify(new URL('../sandbox/provider.js', import.meta.url).href)});
      const sb = await createLocalProvider().provision({ sessionId: 'swept', workspace: ${JSON.stringify(pg.workspace)}, isolation: 'none', env: { AGENTD_TEST_TAG: ${JSON.stringify(pg.tag)} } });
      await sb.execute('bash', { command: 'true' });
      process.stdout.write('ready\\n');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`the provisioning process exited with ${code}`)));
    });
    const left = () => readdirSync(tmpdir()).filter((name) => name.startsWith(`agentd-sandbox-${child.pid}-`));
    assert.equal(left().length, 1, 'its scratch dir is there while it runs');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.deepEqual(await waitUntilGone(pg.tag), [], 'its host ends with its stdin');
    // From here any new provider may sweep it (test files run in parallel, each with providers of its own).
    createLocalProvider();
    assert.deepEqual(left(), []);
  });

  it('close ends the sandbox cleanly and later calls are sandbox_lost', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    const sb = await provider.provision({ sessionId: 'close', workspace: pg.workspace, env: { AGENTD_TEST_TAG: pg.tag } });
    await bash(sb, 'sleep 1000 &');
    await sb.close();
    assert.deepEqual(await sb.ended, { reason: 'closed' });
    assert.equal((await bash(sb, 'echo')).errorKind, 'sandbox_lost');
    assert.deepEqual(await waitUntilGone(pg.tag), []);
    await sb.close(); // idempotent
  });

  it('an unisolated sandbox also leaves no processes behind on close', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    const sb = await provider.provision({ sessionId: 'none', workspace: pg.workspace, isolation: 'none', env: { AGENTD_TEST_TAG: pg.tag } });
    await bash(sb, 'sleep 1000 & (sleep 1001 &)');
    await sb.close();
    assert.deepEqual(await waitUntilGone(pg.tag), []);
  });

  it('fifty sandboxes provisioned and used concurrently all close cleanly with no leaked processes', async (t) => {
    const pg = makePlayground();
    t.after(() => pg.cleanup());
    const count = 50;
    const sandboxes = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const workspace = path.join(pg.root, `ws-${i}`);
        mkdirSync(workspace);
        return provider.provision({ sessionId: `many-${i}`, workspace, env: { AGENTD_TEST_TAG: pg.tag } });
      }),
    );
    try {
      assert.equal(new Set(sandboxes.map((s) => s.id)).size, count);
      const results = await Promise.all(
        sandboxes.map(async (sb, i) => {
          await sb.execute('write_file', { path: 'n.txt', content: String(i) });
          return textOf(await bash(sb, 'cat n.txt; echo; ls .. | wc -l'));
        }),
      );
      results.forEach((out, i) => assert.equal(out, `${i}\n1\n[exit code: 0]`)); // each sees only its own workspace
      assert.ok(processesTagged(pg.tag).length >= count * 2);
    } finally {
      await Promise.all(sandboxes.map((s) => s.close()));
    }
    for (const sb of sandboxes) assert.deepEqual(await sb.ended, { reason: 'closed' });
    assert.deepEqual(await waitUntilGone(pg.tag), []);
  });
});

function readFileOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function waitFor(condition: () => boolean, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
    }),
  ]);
}
