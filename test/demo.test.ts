/** `agentd demo` end to end: its own daemon, the real harness and sandbox, the scripted offline model. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { dataLayout, SessionEvents, type Event } from '../protocol/index.js';
import { runAgentd, startDaemon, tempHome } from './support/daemon.js';
import { tempDir } from './support/temp.js';

describe('agentd demo', () => {
  it('runs a whole session offline without a key: reads, runs, edits, re-checks, and says it is a demo model', async () => {
    // An unrelated data dir and no key: the demo must need neither.
    const unused = tempHome();
    const run = await runAgentd(unused, ['demo'], { env: { ANTHROPIC_API_KEY: '', ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' } });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^agentd demo — offline scripted model, no API key used\n/);
    assert.match(run.stdout, /^\[demo model\] /m);
    const workspace = /^workspace {2}(\S+)$/m.exec(run.stdout)?.[1];
    const found = /AGENTD_HOME=(\S+) npx agentd log (s_[0-9a-z]+)/.exec(run.stdout);
    assert.ok(workspace && found, run.stdout);
    const [, home, sessionId] = found;
    try {
      assert.match(readFileSync(join(workspace, 'lib/stats.js'), 'utf8'), /return sum\(values\) \/ values\.length;/);

      // The demo's daemon is stopped; a fresh one on its data dir reads the log.
      const daemon = await startDaemon({ layout: dataLayout(home!) });
      let log: Event[];
      try {
        const client = await daemon.client();
        log = (await client.request(SessionEvents, { sessionId: sessionId!, limit: 10000 })).events;
      } finally {
        await daemon.dispose();
      }
      const started = log.filter((e) => e.type === 'tool.started');
      assert.deepEqual(
        started.map((e) => e.data.name),
        ['read_file', 'bash', 'read_file', 'edit_file', 'bash'],
      );
      const results = log.filter((e) => e.type === 'tool.result');
      assert.equal(results.length, started.length);
      for (const r of results) assert.equal(r.data.isError, false, JSON.stringify(r.data));
      const lastCheck = results.at(-1)!.data.content as Array<{ text: string }>;
      assert.match(lastCheck[0]!.text, /all 3 passed/);
      assert.ok(log.some((e) => e.type === 'sandbox.provisioned'));
      assert.equal(log.at(-1)?.type, 'turn.completed');
    } finally {
      rmSync(dirname(home!), { recursive: true, force: true });
      rmSync(unused.home, { recursive: true, force: true });
    }
    assert.doesNotMatch(run.stdout, /^note: the sandbox ran at isolation level/m, 'bubblewrap is installed here');
  });

  it('says so when the sandbox was weaker than bubblewrap', async () => {
    // A PATH with what the demo needs but no bwrap: the sandbox falls back to namespaces.
    const bin = tempDir('agentd-nobwrap-');
    for (const tool of [process.execPath, '/usr/bin/unshare', '/usr/bin/true', '/usr/bin/env']) symlinkSync(tool, join(bin, basename(tool)));
    const run = await runAgentd(tempHome(), ['demo'], { env: { ANTHROPIC_API_KEY: '', PATH: bin } });
    const root = /everything is kept in (\S+):/.exec(run.stdout)?.[1];
    if (root) rmSync(root, { recursive: true, force: true });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^· sandbox ready \(namespaces/m);
    assert.match(run.stdout, /^note: the sandbox ran at isolation level "namespaces", weaker than bubblewrap .*\n.*apt-get install -y bubblewrap$/m);
  });
});
