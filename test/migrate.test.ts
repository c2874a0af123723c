/**
 * `agentd migrate --to postgres://...`: a user going from one daemon to several takes
 * their sessions along, every event with its seq and timestamp, and carries on with them
 * from a daemon on the shared log.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionPrompt } from '../protocol/index.js';
import { LevelSessionLog, PgSessionLog } from '../daemon/log/index.js';
import { runAgentd, startDaemon, tempHome } from './support/daemon.js';
import { API_KEY, assertLogInvariants, createSession, ofType, settle } from './support/agent.js';
import { readAll } from './support/log.js';
import { reply, startModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { freshDatabase } from './support/postgres.js';
import { withFixture } from './support/fixture.js';

describe('agentd migrate', () => {
  it('copies every session with its events as stored, once, and a daemon on the database carries on', async () => {
    const emulator = await startModelEmulator({ apiKey: API_KEY });
    const env = { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY };
    const layout = tempHome();
    const url = await freshDatabase();
    const local = await startDaemon({ layout, env });
    try {
      const client = await local.client();
      const talked = await createSession(client, { title: 'talked' });
      const quiet = await createSession(client, { title: 'quiet' });
      emulator.script([reply.text('before the move')]);
      await client.request(SessionPrompt, { sessionId: talked, content: 'hello' });
      await settle(client, talked);
      const token = await runAgentd(layout, ['token', 'create', '--observer', '--name', 'moves-along']);
      assert.equal(token.code, 0, token.stderr);

      // Not while the daemon runs: the data dir's lock says so.
      const refused = await runAgentd(layout, ['migrate', '--to', url]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /daemon for .* is running; stop it first/);
      assert.equal((await runAgentd(layout, ['migrate'])).code, 2);
      await local.kill('SIGTERM');

      const moved = await runAgentd(layout, ['migrate', '--to', url]);
      assert.equal(moved.code, 0, moved.stderr);
      assert.match(moved.stdout, /^copied 2 session\(s\), \d+ event\(s\) to postgres:\/\/\S+, and 1 access token\(s\)/);
      const again = await runAgentd(layout, ['migrate', '--to', url]);
      assert.match(again.stdout, /copied 0 session\(s\), 0 event\(s\) .*; 2 already there/);

      const from = await LevelSessionLog.open(layout.db);
      const to = await PgSessionLog.open(url);
      try {
        for (const id of [talked, quiet]) {
          assert.deepEqual(await readAll(to, id), await readAll(from, id), `${id}: events, seqs and timestamps as stored`);
          assert.deepEqual(await to.getMeta(id), await from.getMeta(id));
        }
        assert.deepEqual(await to.tokens.list(), await from.tokens.list(), 'the access token (its hash) moved along');
      } finally {
        await from.close();
        await to.close();
      }

      await withFixture(startDaemon({ layout: tempHome(), env: { ...env, AGENTD_LOG: url } }), async (shared) => {
        const sc = await shared.client();
        emulator.script([reply.text('after the move')]);
        await sc.request(SessionPrompt, { sessionId: talked, content: 'still there?' });
        const events = await settle(sc, talked);
        assert.deepEqual(assertLogInvariants(events), []);
        assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i));
        assert.equal(ofType(events, 'turn.completed').length, 2);
      });
    } finally {
      await local.dispose();
      await emulator.close();
    }
  });
});
