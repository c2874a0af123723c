/** The session surface over the protocol: rename, delete, rollback, steer, usage per turn and per session, budgets. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  AgentdError,
  ErrorCode,
  SessionAttach,
  SessionDelete,
  SessionFork,
  SessionGet,
  SessionList,
  SessionPrompt,
  SessionRename,
  SessionRollback,
  SessionSetBudget,
  SessionSteer,
} from '../protocol/index.js';
import { connect } from '../clients/lib/index.js';
import { lastUserText, reply, type RecordedRequest } from '../clients/cli/demo/model-emulator.js';
import { runAgentd } from './support/daemon.js';
import { assertLogInvariants, createSession, ofType, settle, startAgentRig, waitForEvent, workspace } from './support/agent.js';
import { suiteFixture } from './support/fixture.js';

const refused = (code: number) => (e: unknown) => e instanceof AgentdError && e.code === code;
type Body = { messages: Array<{ role: string; content: Array<{ type: string; text?: string }> }> };
const texts = (request: RecordedRequest) => JSON.stringify((request.body as Body).messages);

/** A reply that waits until `release()` is called: the model call stays in flight until then. */
function heldReply(then: ReturnType<typeof reply.text>) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return { reply: async () => (await released, then), release };
}

describe('session surface', () => {
  const rig = suiteFixture(() => startAgentRig({}, [], { prices: { 'priced-model': { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 } } }));

  it('renames a session: a session.renamed event, the new title in session/get and list; observers and bad titles refused', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client, { title: 'first name' });
    await client.request(SessionRename, { sessionId, title: 'second name' });
    assert.equal((await client.request(SessionGet, { sessionId })).title, 'second name');
    const listed = (await client.request(SessionList, {})).sessions.find((s) => s.sessionId === sessionId);
    assert.equal(listed?.title, 'second name');
    const renamed = await waitForEvent(client, sessionId, (e) => e.type === 'session.renamed');
    assert.equal(renamed.data.title, 'second name');
    await assert.rejects(client.request(SessionRename, { sessionId, title: '' }), refused(ErrorCode.InvalidParams));
    const observer = await connect({ layout: rig().daemon.layout, autostart: false, clientName: 'observer' });
    try {
      await observer.request(SessionAttach, { sessionId, role: 'observer' });
      await assert.rejects(observer.request(SessionRename, { sessionId, title: 'hijacked' }), refused(ErrorCode.NotController));
      await assert.rejects(observer.request(SessionDelete, { sessionId }), refused(ErrorCode.NotController));
    } finally {
      observer.close();
    }
    assert.equal((await client.request(SessionGet, { sessionId })).title, 'second name');
  });

  it('deletes a session and a fork: logs gone, the fork’s workspace copy removed, the user’s workspace kept', async () => {
    const client = await rig().daemon.client();
    const dir = workspace();
    const sessionId = await createSession(client, { workspace: dir });
    rig().emulator.script([reply.text('hello')]);
    await client.request(SessionPrompt, { sessionId, content: 'hi' });
    await settle(client, sessionId);
    const fork = await client.request(SessionFork, { sessionId, at: 2 });
    const forkWorkspace = (await client.request(SessionGet, { sessionId: fork.sessionId })).workspace;
    assert.ok(existsSync(forkWorkspace));
    assert.deepEqual(await client.request(SessionDelete, { sessionId: fork.sessionId }), { deleted: [fork.sessionId] });
    assert.equal(existsSync(forkWorkspace), false, 'the fork’s copy of the workspace goes with it');
    assert.deepEqual(await client.request(SessionDelete, { sessionId }), { deleted: [sessionId] });
    assert.ok(existsSync(dir), 'a workspace the user named stays');
    await assert.rejects(client.request(SessionGet, { sessionId }), refused(ErrorCode.SessionNotFound));
    await assert.rejects(client.request(SessionPrompt, { sessionId, content: 'again' }), refused(ErrorCode.SessionNotFound));
    await assert.rejects(client.request(SessionDelete, { sessionId }), refused(ErrorCode.SessionNotFound));
    const ids = (await client.request(SessionList, {})).sessions.map((s) => s.sessionId);
    assert.ok(!ids.includes(sessionId) && !ids.includes(fork.sessionId));
  });

  it('refuses delete and rollback while a turn runs (SessionBusy), and both work once it ended', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    const held = heldReply(reply.text('slow answer'));
    rig().emulator.script([held.reply]);
    await client.request(SessionPrompt, { sessionId, content: 'take your time' });
    await waitForEvent(client, sessionId, (e) => e.type === 'model.requested');
    await assert.rejects(client.request(SessionDelete, { sessionId }), refused(ErrorCode.SessionBusy));
    await assert.rejects(client.request(SessionRollback, { sessionId, turns: 1 }), refused(ErrorCode.SessionBusy));
    held.release();
    await settle(client, sessionId);
    assert.equal((await client.request(SessionRollback, { sessionId, turns: 1 })).turnIds.length, 1);
    await client.request(SessionDelete, { sessionId });
  });

  it('rolls back the last turns: an event, the log kept, and the next request without them', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    rig().emulator.script([reply.text('noted alpha'), reply.text('noted beta'), reply.text('noted gamma')]);
    for (const word of ['alpha', 'beta']) {
      await client.request(SessionPrompt, { sessionId, content: `remember ${word}` });
      await settle(client, sessionId);
    }
    await assert.rejects(client.request(SessionRollback, { sessionId, turns: 3 }), refused(ErrorCode.InvalidPosition));
    const before = await settle(client, sessionId);
    const betaTurn = String(ofType(before, 'user.message')[1]!.data.turnId);
    const rolled = await client.request(SessionRollback, { sessionId, turns: 1 });
    assert.deepEqual(rolled.turnIds, [betaTurn]);
    const start = rig().emulator.requests.length;
    await client.request(SessionPrompt, { sessionId, content: 'what do you remember?' });
    const events = await settle(client, sessionId);
    const request = rig().emulator.requests[start]!;
    assert.match(texts(request), /remember alpha/);
    assert.doesNotMatch(texts(request), /remember beta|noted beta/);
    const event = ofType(events, 'session.rolled_back')[0]!;
    assert.equal(event.seq, rolled.seq);
    assert.deepEqual(event.data, { turns: 1, turnIds: [betaTurn], fromSeq: ofType(before, 'user.message')[1]!.seq });
    assert.equal(ofType(events, 'user.message').length, 3, 'the log keeps every turn');
  });

  it('steers a running turn: logged at once, carried by the next model call of the same turn', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client);
    const held = heldReply(reply.text('a first answer'));
    rig().emulator.script([held.reply, reply.text('answer with the steer in mind')]);
    const start = rig().emulator.requests.length;
    const prompted = await client.request(SessionPrompt, { sessionId, content: 'write a poem' });
    await waitForEvent(client, sessionId, (e) => e.type === 'model.requested');
    const steered = await client.request(SessionSteer, { sessionId, content: 'make it about the sea' });
    assert.deepEqual({ turnId: steered.turnId, steered: steered.steered }, { turnId: prompted.turnId, steered: true });
    await waitForEvent(client, sessionId, (e) => e.type === 'user.steer');
    held.release();
    const events = await settle(client, sessionId);
    assert.deepEqual(assertLogInvariants(events), []);
    const requests = rig().emulator.requests.slice(start);
    assert.equal(requests.length, 2, 'the turn called the model once more for the steer');
    assert.doesNotMatch(texts(requests[0]!), /about the sea/);
    assert.equal(lastUserText(requests[1]!.body), 'make it about the sea');
    assert.match(texts(requests[1]!), /a first answer/);
    assert.equal(ofType(events, 'turn.started').length, 1);
    const completed = ofType(events, 'turn.completed');
    assert.equal(completed.length, 1);
    assert.equal(completed[0]!.data.turnId, prompted.turnId);
    const requested = ofType(events, 'model.requested');
    assert.deepEqual(requested[1]!.data.steers, [steered.seq]);

    // No turn running: a steer is a prompt, a turn of its own.
    rig().emulator.script([reply.text('a turn of its own')]);
    const idle = await client.request(SessionSteer, { sessionId, content: 'and now?' });
    assert.equal(idle.steered, false);
    const after = await settle(client, sessionId);
    assert.equal(ofType(after, 'turn.completed').at(-1)!.data.turnId, idle.turnId);
  });

  it('counts usage per turn and per session, priced by the daemon’s price table', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client, { model: 'priced-model' });
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo hi' } }), reply.text('done'), reply.text('again')]);
    await client.request(SessionPrompt, { sessionId, content: 'one' });
    await settle(client, sessionId);
    await client.request(SessionPrompt, { sessionId, content: 'two' });
    const events = await settle(client, sessionId);
    const replies = ofType(events, 'assistant.message').map((e) => e.data.usage as Record<string, number>);
    const sum = (key: string, of = replies) => of.reduce((n, u) => n + u[key]!, 0);
    const price = (u: Record<string, number>) => (u.inputTokens! * 3 + u.outputTokens! * 15 + u.cacheReadTokens! * 0.3 + u.cacheWriteTokens! * 3.75) / 1e6;
    const turns = ofType(events, 'turn.completed').map((e) => e.data.usage as Record<string, number>);
    assert.equal(turns.length, 2);
    assert.equal(turns[0]!.outputTokens, sum('outputTokens', replies.slice(0, 2)));
    assert.equal(turns[1]!.inputTokens, sum('inputTokens', replies.slice(2)));
    assert.ok(Math.abs(turns[0]!.costUsd! - replies.slice(0, 2).reduce((n, u) => n + price(u), 0)) < 1e-12);
    const info = await client.request(SessionGet, { sessionId });
    for (const key of ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens']) assert.equal(info.usage[key as 'inputTokens'], sum(key));
    assert.ok(info.usage.costUsd! > 0);
    assert.ok(Math.abs(info.usage.costUsd! - replies.reduce((n, u) => n + price(u), 0)) < 1e-12);
  });

  it('stops a turn at its token budget with budget_exceeded, and refuses a cost budget for a model without a price', async () => {
    const client = await rig().daemon.client();
    await assert.rejects(createSession(client, { budget: { maxCost: 1 } }), refused(ErrorCode.InvalidParams));
    const sessionId = await createSession(client, { budget: { maxTokens: 1 } });
    assert.deepEqual((await client.request(SessionGet, { sessionId })).budget, { maxTokens: 1 });
    rig().emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo spent' } }), reply.text('never sent')]);
    const start = rig().emulator.requests.length;
    await client.request(SessionPrompt, { sessionId, content: 'spend' });
    const events = await settle(client, sessionId);
    assert.deepEqual(assertLogInvariants(events), []);
    assert.equal(rig().emulator.requests.length - start, 1, 'no model call past the budget');
    const failed = ofType(events, 'turn.failed')[0]!;
    assert.equal(failed.data.reason, 'budget_exceeded');
    assert.match(String(failed.data.error), /budget exceeded/);
    assert.equal(ofType(events, 'tool.result').length, 1, 'the tool call of the last allowed reply still got its result');
    rig().emulator.script([]);
  });

  it('raises and lowers a budget after create (a budget.changed event): a session stopped by it goes on when prompted again', async () => {
    const client = await rig().daemon.client();
    const sessionId = await createSession(client, { budget: { maxTokens: 1 } });
    rig().emulator.script([reply.text('the one call the budget allows')]);
    await client.request(SessionPrompt, { sessionId, content: 'first' });
    await settle(client, sessionId);
    const start = rig().emulator.requests.length;
    await client.request(SessionPrompt, { sessionId, content: 'refused' });
    assert.equal(ofType(await settle(client, sessionId), 'turn.failed').at(-1)!.data.reason, 'budget_exceeded');
    assert.equal(rig().emulator.requests.length, start, 'no call past the budget');

    await assert.rejects(client.request(SessionSetBudget, { sessionId, budget: { maxCost: 1 } }), refused(ErrorCode.InvalidParams));
    await assert.rejects(client.request(SessionSetBudget, { sessionId, budget: { maxTokens: 0 } }), refused(ErrorCode.InvalidParams));
    await client.request(SessionSetBudget, { sessionId, budget: { maxTokens: 1_000_000 } });
    assert.deepEqual((await client.request(SessionGet, { sessionId })).budget, { maxTokens: 1_000_000 });
    rig().emulator.script([reply.text('raised, it goes on')]);
    await client.request(SessionPrompt, { sessionId, content: 'again' });
    const events = await settle(client, sessionId);
    assert.equal(ofType(events, 'turn.completed').length, 2);
    assert.deepEqual(ofType(events, 'budget.changed').map((e) => e.data.budget), [{ maxTokens: 1_000_000 }]);
    // Every call the budget let through was reserved and settled in the log.
    assert.deepEqual(ofType(events, 'budget.reserved').map((e) => e.data.key), ofType(events, 'budget.settled').map((e) => e.data.key));

    // Lowered below what was spent: the next turn stops before its model call; removed: no limit.
    await client.request(SessionSetBudget, { sessionId, budget: { maxTokens: 1 } });
    await client.request(SessionPrompt, { sessionId, content: 'lowered' });
    assert.equal(ofType(await settle(client, sessionId), 'turn.failed').at(-1)!.data.reason, 'budget_exceeded');
    await client.request(SessionSetBudget, { sessionId, budget: {} });
    assert.equal((await client.request(SessionGet, { sessionId })).budget, undefined);
    rig().emulator.script([reply.text('no budget at all')]);
    await client.request(SessionPrompt, { sessionId, content: 'unlimited' });
    assert.equal(ofType(await settle(client, sessionId), 'turn.completed').length, 3);
    rig().emulator.script([]);
  });

  it('does all of it from the CLI: new with a budget, usage, rename, rollback, steer, delete with a confirmation', async () => {
    const { layout } = rig().daemon;
    const cli = async (args: string[], input?: string) => {
      const run = await runAgentd(layout, args, input === undefined ? {} : { input });
      assert.equal(run.code, 0, `agentd ${args.join(' ')}: ${run.stderr}`);
      return run.stdout;
    };
    const sessionId = (await cli(['new', '--workspace', workspace(), '--title', 'cli session', '--max-tokens', '1'])).trim();
    const client = await rig().daemon.client();
    rig().emulator.script([reply.text('one reply within the budget')]);
    await cli(['prompt', sessionId, 'hello']);
    await settle(client, sessionId);
    rig().emulator.script([]);
    await cli(['prompt', sessionId, 'over budget']);
    await settle(client, sessionId);
    const usage = JSON.parse(await cli(['usage', sessionId, '--json'])) as { budget: unknown; usage: { outputTokens: number }; turns: Array<{ end: string }> };
    assert.deepEqual(usage.budget, { maxTokens: 1 });
    assert.deepEqual(usage.turns.map((t) => t.end), ['completed', 'failed']);
    assert.ok(usage.usage.outputTokens > 0);
    assert.match(await cli(['usage', sessionId]), /session +in \d+ .* out \d+/);
    assert.match(await cli(['budget', sessionId, '--max-tokens', '1000000']), /budget of .*: 1000000 tokens/);
    assert.equal((await runAgentd(layout, ['budget', sessionId])).code, 2, 'neither a limit nor --none: a usage error');
    rig().emulator.script([reply.text('going on after the raise')]);
    await cli(['prompt', sessionId, 'raised']);
    assert.equal(ofType(await settle(client, sessionId), 'turn.completed').length, 2);
    assert.match(await cli(['budget', sessionId, '--none']), /no budget now/);

    assert.match(await cli(['rename', sessionId, 'a', 'new', 'name']), /renamed/);
    assert.equal((await client.request(SessionGet, { sessionId })).title, 'a new name');
    assert.match(await cli(['rollback', sessionId, '--turns', '3']), /rolled back 3 turns/);
    const tooMany = await runAgentd(layout, ['rollback', sessionId, '--turns', '1']);
    assert.equal(tooMany.code, 2, 'no turn left in the context: a usage error');
    assert.match(await cli(['steer', sessionId, 'anyone', 'there?']), /no turn was running: queued as turn/);
    await settle(client, sessionId);

    const declined = await runAgentd(layout, ['delete', sessionId], { input: 'n\n' });
    assert.equal(declined.code, 1);
    assert.match(declined.stderr, /delete session "a new name".*\[y\/N\][\s\S]*not deleted/);
    assert.equal((await client.request(SessionGet, { sessionId })).sessionId, sessionId);
    assert.match(await cli(['delete', sessionId], 'y\n'), new RegExp(`deleted ${sessionId}`));
    await assert.rejects(client.request(SessionGet, { sessionId }), refused(ErrorCode.SessionNotFound));
  });
});
