/** The daemon as a process: one per data dir, stale sockets, clean stops, crashes, autostart. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonStatus, DaemonStop, ErrorCode, SessionCreate, SessionEvents, SessionPrompt } from '../protocol/index.js';
import { connect } from '../clients/lib/index.js';
import { readLog, runAgentd, startDaemon, stopDaemonsOf, tempHome } from './support/daemon.js';
import { tempDir } from './support/temp.js';
import { withFixture } from './support/fixture.js';

const workspace = () => tempDir('agentd-ws-');

describe('daemon process', () => {
  it('listens on a 0600 socket, logs to daemon.log and never to stdout', async () => {
    await withFixture(startDaemon(), async (daemon) => {
      assert.equal(statSync(daemon.layout.socket).mode & 0o777, 0o600);
      const client = await daemon.client();
      await client.request(SessionCreate, { workspace: workspace() });
      assert.match(readLog(daemon.layout), /daemon ready/);
      assert.equal(daemon.stdout(), '');
    });
  });

  it('refuses a second daemon on the same data dir, naming the running pid', async () => {
    await withFixture(startDaemon(), async (daemon) => {
      const second = await runAgentd(daemon.layout, ['daemon']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`daemon \\(pid ${daemon.proc.pid}\\) is already running`));
      const client = await daemon.client();
      assert.equal((await client.request(DaemonStatus, {})).pid, daemon.proc.pid);
    });
  });

  it('cleans up the stale socket of a daemon killed with SIGKILL and keeps its sessions', async () => {
    const first = await startDaemon();
    const client = await first.client();
    const { sessionId } = await client.request(SessionCreate, { workspace: workspace() });
    await client.request(SessionPrompt, { sessionId, content: 'before the crash' });
    await first.kill('SIGKILL');
    assert.ok(statSync(first.layout.socket).isSocket(), 'the dead daemon left its socket behind');
    await withFixture(startDaemon({ layout: first.layout }), async (second) => {
      const again = await second.client();
      const page = await again.request(SessionEvents, { sessionId, to: 2 });
      assert.deepEqual(page.events.map((e) => e.type), ['session.created', 'user.message']);
    });
  });

  it('exits 0 on SIGTERM after answering in-flight appends', async () => {
    await withFixture(startDaemon(), async (daemon) => {
      const client = await daemon.client();
      const { sessionId } = await client.request(SessionCreate, { workspace: workspace() });
      const prompts = Array.from({ length: 50 }, (_, i) => client.request(SessionPrompt, { sessionId, content: `m${i}` }));
      daemon.proc.kill('SIGTERM');
      const settled = await Promise.allSettled(prompts);
      const acked = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.seq] : []));
      // A prompt the daemon read while stopping is refused with DaemonStopping; one still in
      // the socket when it closed the connection never reached it, and the client rejects it
      // (vscode-jsonrpc's PendingResponseRejected, -32097). Neither was acknowledged.
      for (const s of settled) {
        if (s.status === 'rejected') assert.ok([ErrorCode.DaemonStopping, -32097].includes((s.reason as { code?: number }).code!), String(s.reason));
      }
      const exit = await daemon.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      await withFixture(startDaemon({ layout: daemon.layout }), async (restarted) => {
        const page = await (await restarted.client()).request(SessionEvents, { sessionId });
        const stored = page.events.filter((e) => e.type === 'user.message').map((e) => e.seq);
        for (const seq of acked) assert.ok(stored.includes(seq), `acknowledged seq ${seq} is on disk`);
      });
    });
  });

  it('stops on daemon/stop, answering first, and exits 0', async () => {
    await withFixture(startDaemon(), async (daemon) => {
      const client = await daemon.client();
      assert.deepEqual(await client.request(DaemonStop, {}), {});
      await client.closed;
      assert.deepEqual(await daemon.exited, { code: 0, signal: null });
    });
  });

  it('fails fast with a clear message on an unusable data dir', async () => {
    const file = join(tempDir('agentd-file-'), 'not-a-dir');
    writeFileSync(file, 'x');
    const layout = tempHome();
    const result = await runAgentd({ ...layout, home: join(file, 'home') }, ['daemon']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /data directory .* is not usable/);
  });

  it('reports a full disk as a storage failure, acknowledges nothing unwritten, and stays up', async () => {
    // RLIMIT_FSIZE makes writes past 512 KiB fail with EFBIG, as a full disk would.
    await withFixture(startDaemon({ wrap: 'ulimit -f 512' }), async (daemon) => {
      const client = await daemon.client();
      const { sessionId } = await client.request(SessionCreate, { workspace: workspace() });
      const big = 'x'.repeat(60_000);
      const acked: number[] = [];
      let failure: { code?: number; message?: string } | undefined;
      for (let i = 0; i < 40 && !failure; i++) {
        try {
          acked.push((await client.request(SessionPrompt, { sessionId, content: `${i} ${big}` })).seq);
        } catch (error) {
          failure = error as { code?: number; message?: string };
        }
      }
      assert.ok(failure, 'writes eventually failed');
      assert.equal(failure.code, ErrorCode.StorageFailure);
      assert.match(String(failure.message), /storage failure/);
      const status = await client.request(DaemonStatus, {});
      assert.equal(status.pid, daemon.proc.pid, 'the daemon is still up');
      await daemon.kill('SIGKILL');
      await withFixture(startDaemon({ layout: daemon.layout }), async (reopened) => {
        const page = await (await reopened.client()).request(SessionEvents, { sessionId, types: ['user.message'] });
        assert.deepEqual(page.events.map((e) => e.seq), acked, 'exactly the acknowledged events are on disk');
      });
    });
  });

  it('is started once when two clients autostart it at the same moment', async () => {
    const layout = tempHome();
    const [a, b] = await Promise.all([
      connect({ layout, clientName: 'a' }),
      connect({ layout, clientName: 'b' }),
    ]);
    try {
      const [sa, sb] = await Promise.all([a.request(DaemonStatus, {}), b.request(DaemonStatus, {})]);
      assert.equal(sa.pid, sb.pid);
      assert.equal(sa.counts.connections, 2);
    } finally {
      await a.request(DaemonStop, {});
      a.close();
      b.close();
      await stopDaemonsOf(layout);
    }
  });

  it('keeps running after an editor that used agentd stdio goes away', async () => {
    const layout = tempHome();
    const editor = await runAgentd(layout, ['stdio'], {
      input: frame({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '1.0', clientInfo: { name: 'editor' } } }),
    });
    assert.equal(editor.code, 0);
    assert.match(editor.stdout, /^Content-Length: \d+\r\n\r\n\{.*"serverInfo"/s);
    const client = await connect({ layout, clientName: 'after', autostart: false });
    try {
      const status = await client.request(DaemonStatus, {});
      assert.ok(status.pid > 0);
    } finally {
      await client.request(DaemonStop, {});
      client.close();
    }
  });
});

function frame(message: unknown): string {
  const body = JSON.stringify(message);
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
