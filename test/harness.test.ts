/** The harness against the Messages-API emulator: the model loop, lazy sandboxes, caching, permissions, interrupts, retries, compaction. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SessionDeltaNotification, SessionGet, SessionInterrupt, SessionPrompt, SessionAttach } from '../protocol/index.js';
import { reply, type RecordedRequest } from '../clients/cli/demo/model-emulator.js';
import { answeringClient, allEvents, assertLogInvariants, createSession, ofType, settle, startAgentRig, waitForEvent } from './support/agent.js';
import { suiteFixture, withFixture } from './support/fixture.js';

type Body = { system?: unknown; tools?: unknown; messages: Array<{ role: string; content: Array<Record<string, unknown>> }> };

function withoutCacheMarks(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (key, v) => (key === 'cache_control' ? undefined : v));
}

describe('harness', () => {
  const rig = suiteFixture(() => startAgentRig());

  it('runs a turn: streams deltas, routes a tool call to the sandbox, stores one reply per call and sums usage', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    rig().emulator.script([
      reply.toolUse({ name: 'write_file', input: { path: 'hello.txt', content: 'hi there\n' } }, { text: 'Writing the file.' }),
      reply.text('Done: hello.txt holds a greeting.', { chunks: 4 }),
    ]);
    const deltas: string[] = [];
    client.onNotification(SessionDeltaNotification, (d) => d.sessionId === sessionId && d.kind === 'text' && deltas.push(d.text));
    await client.subscribe(sessionId, 0, { onEvents: () => undefined });
    await client.request(SessionPrompt, { sessionId, content: 'make hello.txt' });
    const events = await settle(client, sessionId);
    assert.deepEqual(assertLogInvariants(events), []);
    assert.deepEqual(
      events.map((e) => e.type).filter((t) => !t.startsWith('sandbox.')),
      ['session.created', 'user.message', 'turn.started', 'model.requested', 'assistant.message', 'tool.started', 'tool.result', 'model.requested', 'assistant.message', 'turn.completed'],
    );
    const result = ofType(events, 'tool.result')[0]!;
    assert.equal(result.data.isError, false);
    const created = ofType(events, 'session.created')[0]!;
    assert.equal(readFileSync(`${created.data.workspace}/hello.txt`, 'utf8'), 'hi there\n');
    assert.equal(deltas.join(''), 'Writing the file.Done: hello.txt holds a greeting.');
    assert.equal(ofType(events, 'assistant.message').length, 2);
    const info = await client.request(SessionGet, { sessionId });
    const replies = ofType(events, 'assistant.message').map((e) => e.data.usage as { outputTokens: number; cacheReadTokens: number; cacheWriteTokens: number });
    assert.equal(info.usage.outputTokens, replies.reduce((n, u) => n + u.outputTokens, 0));
    assert.equal(info.usage.cacheReadTokens, replies.reduce((n, u) => n + u.cacheReadTokens, 0));
    assert.ok(info.usage.cacheWriteTokens > 0);
  });

  it('starts the first model call with no sandbox, and provisions one only when a tool is first called', async () => {
    const client = await rig().daemon.client();
    const lazy = await createSession(client);
    rig().emulator.script([reply.text('No tools needed.')]);
    await client.request(SessionPrompt, { sessionId: lazy, content: 'just talk' });
    const talked = await settle(client, lazy);
    assert.equal(ofType(talked, 'sandbox.provisioned').length, 0, 'no sandbox for a turn without tools');
    const request = rig().emulator.requests.at(-1)!.body as { tools: Array<{ name: string }> };
    assert.deepEqual(request.tools.map((t) => t.name), ['bash', 'read_file', 'write_file', 'edit_file', 'glob', 'grep', 'agent']);
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo lazy' } }), reply.text('ok')]);
    await client.request(SessionPrompt, { sessionId: lazy, content: 'now a tool' });
    const used = await settle(client, lazy);
    const provisioned = ofType(used, 'sandbox.provisioned');
    assert.equal(provisioned.length, 1);
    assert.ok(provisioned[0]!.seq > ofType(used, 'tool.started')[0]!.seq, 'provisioned after the tool call, not before');
    assert.equal(provisioned[0]!.data.isolation, 'bwrap');

    const eager = await createSession(client, { sandbox: { eager: true } });
    await waitForEvent(client, eager, (e) => e.type === 'sandbox.provisioned');
  });

  it('binds an eager sandbox only once the first model call has streamed: the first token never waits for it', async () => {
    const client = await rig().daemon.client();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    rig().emulator.script([async () => (await released, reply.text('first words'))]);
    const before = rig().emulator.requests.length;
    const sessionId = await createSession(client, { sandbox: { eager: true } });
    await client.request(SessionPrompt, { sessionId, content: 'hello' });
    await rig().emulator.waitForRequests(before + 1);
    // Past the grace for a prompt sent with the create, and past a provision's own time.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(ofType(await allEvents(client, sessionId), 'sandbox.provisioned').length, 0, 'no sandbox while the model call has streamed nothing');
    release();
    await waitForEvent(client, sessionId, (e) => e.type === 'sandbox.provisioned');
    const events = await settle(client, sessionId);
    assert.deepEqual(assertLogInvariants(events), []);
    assert.equal(ofType(events, 'sandbox.provisioned').length, 1);
  });

  it('builds each request so the next one extends it byte for byte (prompt cache prefix)', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client, { system: 'Be brief.' });
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo one' } }), reply.text('first'), reply.text('second')]);
    const start = rig().emulator.requests.length;
    await client.request(SessionPrompt, { sessionId, content: 'turn one' });
    await settle(client, sessionId);
    await client.request(SessionPrompt, { sessionId, content: 'turn two' });
    await settle(client, sessionId);
    const bodies = rig().emulator.requests.slice(start).map((r: RecordedRequest) => withoutCacheMarks(r.body) as Body);
    assert.equal(bodies.length, 3);
    for (let i = 1; i < bodies.length; i++) {
      const [prev, next] = [bodies[i - 1]!, bodies[i]!];
      assert.deepEqual(next.system, prev.system);
      assert.deepEqual(next.tools, prev.tools);
      const prevMessages = JSON.stringify(prev.messages);
      assert.ok(JSON.stringify(next.messages).startsWith(prevMessages.slice(0, -1)), `request ${i + 1} extends request ${i}`);
    }
    const usage = ofType(await allEvents(client, sessionId), 'assistant.message').map((e) => e.data.usage as { cacheReadTokens: number });
    assert.ok(usage.at(-1)!.cacheReadTokens > 0, 'the last call read the cached prefix');
  });

  it('asks permission of every controller that can answer, takes the first answer, and remembers allow_always', async () => {
    const admin = await rig().daemon.client();
    const sessionId = await createSession(admin, { title: 'asks twice', permissions: { default: 'ask', deny: ['bash(rm *)'] } });
    const asked: string[] = [];
    const layout = rig().daemon.layout;
    const fast = await answeringClient(layout, 'fast', async (q) => (asked.push(`fast:${q.tool}:${q.sessionId}:${q.sessionTitle}`), 'allow_always'));
    // Answers only once fast's answer is in the log: too late, and ignored.
    const slow = await answeringClient(layout, 'slow', async (q) => {
      asked.push(`slow:${q.tool}`);
      await waitForEvent(admin, q.sessionId, (e) => e.type === 'permission.resolved' && e.data.toolUseId === q.toolUseId);
      return 'deny';
    });
    const observer = await answeringClient(layout, 'observer', async () => (asked.push('observer'), 'deny'));
    // Connected and able to answer, but never attached: not a controller, never asked.
    const bystander = await answeringClient(layout, 'bystander', async () => (asked.push('bystander'), 'allow'));
    await observer.request(SessionAttach, { sessionId, role: 'observer' });
    await fast.request(SessionAttach, { sessionId, role: 'controller' });
    await slow.request(SessionAttach, { sessionId, role: 'controller' });
    try {
      rig().emulator.script([
        reply.toolUse({ name: 'bash', input: { command: 'echo asked' } }),
        reply.toolUse({ name: 'bash', input: { command: 'echo not asked again' } }),
        reply.toolUse({ name: 'bash', input: { command: 'rm -rf /tmp/nothing' } }),
        reply.text('finished'),
      ]);
      await admin.request(SessionPrompt, { sessionId, content: 'go' });
      const events = await settle(admin, sessionId);
      assert.deepEqual(assertLogInvariants(events), []);
      const resolved = ofType(events, 'permission.resolved');
      assert.equal(ofType(events, 'permission.requested').length, 1, 'asked once; allow_always covers the second call');
      assert.equal(resolved.length, 1);
      assert.equal(resolved[0]!.data.decision, 'allow_always');
      assert.match(String(resolved[0]!.data.by), /^fast#\d+$/);
      assert.ok(!asked.includes('observer'), 'observers are never asked');
      assert.ok(!asked.includes('bystander'), 'a connection that is no controller of the session is never asked');
      assert.ok(asked.includes(`fast:bash:${sessionId}:asks twice`), `each question names its session and title: ${asked.join(', ')}`);
      const results = ofType(events, 'tool.result');
      assert.deepEqual(results.map((r) => [r.data.isError, r.data.errorKind ?? null]), [[false, null], [false, null], [true, 'denied']]);
    } finally {
      fast.close();
      slow.close();
      observer.close();
      bystander.close();
    }
  });

  it('interrupts a streaming reply and a running tool, leaving no orphan tool call, and carries on', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    rig().emulator.script([reply.hang()]);
    await client.request(SessionPrompt, { sessionId, content: 'hang' });
    await rig().emulator.waitFor(() => rig().emulator.inFlight > 0);
    assert.deepEqual(await client.request(SessionInterrupt, { sessionId }), { interrupted: true });
    let events = await settle(client, sessionId);
    assert.equal(ofType(events, 'turn.interrupted').length, 1);
    assert.equal(ofType(events, 'assistant.message').length, 0);

    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'sleep 60 & sleep 60' } })]);
    await client.request(SessionPrompt, { sessionId, content: 'run something slow' });
    // Its sandbox is provisioned for this call, which then runs in it.
    await waitForEvent(client, sessionId, (e) => e.type === 'sandbox.provisioned');
    assert.deepEqual(await client.request(SessionInterrupt, { sessionId }), { interrupted: true });
    events = await settle(client, sessionId);
    const result = ofType(events, 'tool.result').at(-1)!;
    assert.equal(result.data.isError, true);
    assert.equal(result.data.errorKind, 'interrupted');
    assert.equal(ofType(events, 'turn.interrupted').length, 2);

    rig().emulator.script([reply.text('back to work')]);
    await client.request(SessionPrompt, { sessionId, content: 'continue' });
    events = await settle(client, sessionId);
    assert.equal(ofType(events, 'turn.completed').length, 1);
    assert.deepEqual(assertLogInvariants(events), []);
    assert.equal(rig().emulator.requests.at(-1)!.status, 200, 'the API accepted the context after interrupts (no orphan tool_use)');
    assert.deepEqual(await client.request(SessionInterrupt, { sessionId }), { interrupted: false });
  });

  it('retries 429, 529, 500 and a dropped stream, recording each retry, then completes', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    rig().emulator.script([reply.rateLimited(0), reply.overloaded(), reply.serverError(), reply.disconnect({ afterEvents: 3 }), reply.text('made it')]);
    await client.request(SessionPrompt, { sessionId, content: 'flaky' });
    const events = await settle(client, sessionId);
    assert.equal(ofType(events, 'model.retry').length, 4);
    assert.equal(ofType(events, 'model.requested').length, 5);
    assert.equal(ofType(events, 'assistant.message').length, 1);
    assert.equal(ofType(events, 'turn.completed').length, 1);
    assert.match(String(ofType(events, 'model.retry')[0]!.data.reason), /429/);
  });

  it('fails the turn with the API message once retries run out', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    rig().emulator.script(Array.from({ length: 10 }, () => reply.overloaded('Overloaded right now')));
    await client.request(SessionPrompt, { sessionId, content: 'doomed' });
    const events = await settle(client, sessionId);
    const failed = ofType(events, 'turn.failed');
    assert.equal(failed.length, 1);
    assert.match(String(failed[0]!.data.error), /Overloaded right now/);
    rig().emulator.script([]);
  });

  it('compacts older turns into a summary when the context passes its budget, leaving the log whole', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client, { context: { budgetTokens: 3000 } });
    const long = 'lorem ipsum '.repeat(400);
    for (let i = 0; i < 3; i++) {
      rig().emulator.script([(req) => (JSON.stringify(req.body).includes('Summarise the conversation') ? reply.text('SUMMARY: three long turns') : reply.text(`answer ${i} ${long}`))]);
      rig().emulator.enqueue((req) => (JSON.stringify(req.body).includes('Summarise the conversation') ? reply.text('SUMMARY: three long turns') : reply.text(`answer ${i}`)));
      await client.request(SessionPrompt, { sessionId, content: `question ${i} ${long}` });
      await settle(client, sessionId);
    }
    const events = await allEvents(client, sessionId);
    const compacted = ofType(events, 'context.compacted');
    assert.ok(compacted.length >= 1, 'compacted at least once');
    assert.match(String(compacted[0]!.data.summary), /SUMMARY/);
    assert.equal(ofType(events, 'user.message').length, 3, 'the log keeps every turn');
    const last = rig().emulator.requests.at(-1)!.body as Body;
    assert.match(JSON.stringify(last.messages[0]), /SUMMARY: three long turns/);
    assert.doesNotMatch(JSON.stringify(last.messages), /question 0/);
  });

  it('gives a sandbox_lost result when the sandbox dies mid-call, and a fresh sandbox to the next call', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    rig().emulator.script([
      reply.toolUse({ name: 'bash', input: { command: 'echo marker > kept.txt; kill -KILL $PPID; sleep 5' } }),
      reply.toolUse({ name: 'bash', input: { command: 'cat kept.txt' } }),
      reply.text('recovered'),
    ]);
    await client.request(SessionPrompt, { sessionId, content: 'break it' });
    const events = await settle(client, sessionId);
    const results = ofType(events, 'tool.result');
    assert.equal(results[0]!.data.errorKind, 'sandbox_lost');
    assert.equal(results[1]!.data.isError, false);
    assert.match(JSON.stringify(results[1]!.data.content), /marker/, 'the workspace outlives the sandbox');
    assert.equal(ofType(events, 'sandbox.provisioned').length, 2);
    assert.deepEqual(assertLogInvariants(events), []);
  });
});

describe('harness without a usable key', () => {
  it('fails a turn at once when the API rejects the key', async () => {
    await withFixture(startAgentRig({ ANTHROPIC_API_KEY: 'sk-wrong' }), async (rig) => {
      const client = await rig.daemon.client();
      const sessionId = await createSession(client);
      await client.request(SessionPrompt, { sessionId, content: 'hello' });
      const events = await settle(client, sessionId);
      assert.equal(ofType(events, 'model.retry').length, 0, 'no retries for a bad key');
      assert.match(String(ofType(events, 'turn.failed')[0]!.data.error), /rejected the API key/);
    });
  });
});
