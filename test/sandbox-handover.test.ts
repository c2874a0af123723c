// The proxy listener's handover channel against a hostile host (test/support/handover-adversary.ts,
// started in place of the real host): whatever it sends, the sandbox ends and this process (the
// daemon's side of the channel) carries on.
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { describe, it } from 'node:test';
import type { HostConfig } from '../sandbox/host/protocol.js';
import { HostProcess } from '../sandbox/host-process.js';
import { fixturePath } from './support/sandbox-fixtures.js';
import { tempDir } from './support/temp.js';

async function startAdversary(mode: string): Promise<HostProcess> {
  const dir = tempDir('agentd-handover-');
  return HostProcess.start({ command: process.execPath, args: [fixturePath('handover-adversary.js'), mode], cwd: dir }, { PATH: process.env.PATH ?? '' }, null, async () => undefined);
}

const config = (port: number): HostConfig => ({ workspace: '/', env: {}, mcpServers: [], scratch: '/tmp', processScope: 'descendants', proxy: { port } });

describe('proxy listener handover', () => {
  for (const [mode, says] of [
    ['unknown-message', /an unknown message/],
    ['socket-not-listener', /without a listening socket/],
    ['other-address', /not on 127\.0\.0\.1/],
    ['no-handover', /without handing over the proxy listener/],
  ] as const) {
    it(`ends the sandbox of a host that sends ${mode.replace(/-/g, ' ')}`, async () => {
      const host = await startAdversary(mode);
      await assert.rejects(host.configure(config(0)));
      const { reason } = await host.ended;
      assert.match(reason, says);
      assert.match(reason, /killed/);
    });
  }

  it('ends a host that sends a listener before its configuration asked for one', async () => {
    const host = await startAdversary('early');
    const { reason } = await host.ended;
    assert.match(reason, /a message nobody asked for on its handover channel; killed/);
  });

  it('refuses a listener on another port than the one asked for', async () => {
    const host = await startAdversary('any-port');
    await assert.rejects(host.configure(config(1)));
    assert.match((await host.ended).reason, /a listener on port \d+, not 1 on its handover channel/);
  });

  it('takes the first of two listeners and closes the channel before the second arrives', async () => {
    const host = await startAdversary('extra-handle');
    let listener: Server | null = null;
    try {
      ({ listener } = await host.configure(config(0)));
      assert.ok(listener?.listening);
      // After the configuration the host can send nothing more: the channel is closed on both ends.
      const probe = await host.execute('probe', {});
      assert.match(probe.content.map((c) => ('text' in c ? c.text : '')).join(''), /connected=false send=.*(closed|no channel)/i);
      assert.ok(host.alive);
    } finally {
      await host.close();
    }
    assert.equal(listener?.listening, false, 'the listener closes with the sandbox');
  });
});
