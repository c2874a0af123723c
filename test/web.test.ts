/**
 * The web client in a real browser (Debian's chromium, headless, driven by
 * playwright-core) against real daemons over wss:// with a self-signed certificate:
 *
 * - two daemons on one PostgreSQL log: a session created through A is followed live and
 *   approved through B's page (a token scoped to that session), with the write_file diff
 *   shown; a turn streams into the page, is steered and interrupted from it; a question answered
 *   first elsewhere disappears from the page (the first answer wins);
 * - an observer's page shows a turn whose sandbox was killed (the sandbox notices and the
 *   sandbox_lost result), is read-only, and its cookie cannot prompt even from the page's
 *   own script; a controller's page reconnects after the daemon restarts and follows on
 *   with no gap.
 *
 * Screenshots of each step are kept (their paths are printed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { reply, startModelEmulator, type ModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { PermissionAnswer, SessionGet, SessionPrompt, type Event } from '../protocol/index.js';
import { API_KEY, allEvents, createSession, ofType, settle, waitForEvent } from './support/agent.js';
import { logIn, openBrowser, type TestBrowser } from './support/browser.js';
import { startCluster, type Cluster } from './support/cluster.js';
import { createToken, remoteClient, startListeningDaemon, type ListeningDaemon } from './support/remote.js';
import { until } from './support/until.js';
import type { Page } from 'playwright-core';

/** The page's own account of what it applied: every event before `next`, and gaps seen (must be 0). */
async function followed(page: Page): Promise<{ sessionId: string; next: number; gaps: number; status: string }> {
  return page.$eval('#session', (el) => {
    const d = (el as unknown as { dataset: Record<string, string | undefined> }).dataset;
    return { sessionId: d.sessionId ?? '', next: Number(d.next), gaps: Number(d.gaps), status: d.status ?? '' };
  });
}

async function pageCaughtUp(page: Page, events: Event[]): Promise<void> {
  await until(async () => (await followed(page)).next === events.length, 'the page to have applied every event');
  assert.equal((await followed(page)).gaps, 0, 'no gap');
}

describe('web client, two daemons on one PostgreSQL log', () => {
  let cluster: Cluster;
  let a: ListeningDaemon;
  let b: ListeningDaemon;
  let browser: TestBrowser | undefined;
  before(async () => {
    cluster = await startCluster(2, { listen: true, leaseMs: 2000 });
    [a, b] = cluster.daemons as [ListeningDaemon, ListeningDaemon];
  });
  after(async () => {
    await browser?.close();
    await cluster?.dispose();
  });

  it('follows and approves through B a session created through A, streams its turn and interrupts it, and drops a question answered first elsewhere', async () => {
    const creator = await remoteClient(a, await createToken(a.layout, ['--controller', '--name', 'creator']), { name: 'creator' });
    const sessionId = await createSession(creator, { title: 'built on A', permissions: { default: 'ask' } });
    const token = await createToken(b.layout, ['--controller', '--session', sessionId, '--name', 'reviewer']);

    browser = await openBrowser(b.origin, b.cert, 'cluster');
    const { page } = browser;
    await browser.shot('1-login');
    await logIn(browser, token);
    const item = page.locator(`#sessions li[data-session-id="${sessionId}"]`);
    await item.waitFor();
    assert.equal(await page.locator('#sessions li').count(), 1, 'a scoped token lists its session only');
    await item.click();
    await page.waitForSelector(`#session[data-session-id="${sessionId}"]`);

    cluster.emulator.script([
      reply.toolUse({ name: 'write_file', input: { path: 'notes.txt', content: 'hello\nfrom the browser\n' } }),
      // The next call streams a few words, then waits for ever: the page interrupts it.
      reply.hang({ afterEvents: 8 }),
    ]);
    await creator.request(SessionPrompt, { sessionId, content: 'write the notes' });
    const card = page.locator('#conversation .approval');
    await card.waitFor();
    assert.match(await card.innerText(), /built on A asks to run write_file: notes\.txt/);
    assert.deepEqual(await page.locator('#conversation .diff .line.add').allInnerTexts(), ['+ hello', '+ from the browser']);
    await until(async () => /^on /.test((await item.locator('.runs-on').innerText()).trim()), 'the list to say which daemon runs it');
    const status = await creator.request(SessionGet, { sessionId });
    assert.equal((await item.locator('.runs-on').innerText()).trim(), `on ${status.runningOn}`);
    await browser.shot('2-approval-with-diff');
    await card.locator('[data-decision=allow]').click();

    const streaming = page.locator('#conversation .msg.assistant.streaming');
    await streaming.waitFor();
    await until(async () => (await streaming.innerText()).trim().length > 0, 'streamed text in the page');
    await browser.shot('3-streaming');
    // While the turn runs, the page's Send steers it: the text joins the running turn.
    assert.equal((await page.locator('#send').innerText()).trim(), 'Steer');
    await page.fill('#prompt-text', 'and sign it');
    await page.click('#send');
    const steer = await waitForEvent(creator, sessionId, (e) => e.type === 'user.steer');
    assert.equal(steer.data.content, 'and sign it');
    await page.locator('#conversation .msg.user', { hasText: 'and sign it' }).waitFor();
    await page.click('#interrupt');
    await page.locator('#conversation .notice.warning', { hasText: 'Interrupted' }).waitFor();
    await until(async () => (await page.locator('#send').innerText()).trim() === 'Send', 'Send to start a turn again once the turn ended');
    let events = await settle(creator, sessionId);
    assert.equal(events.find((e) => e.type === 'permission.resolved')?.data.by?.toString().startsWith('agentd-web'), true, 'the page answered');
    assert.equal(ofType(events, 'turn.interrupted').length, 1);
    await pageCaughtUp(page, events);
    assert.match(await page.locator('#conversation details.tool[data-tool=write_file] .result').innerText(), /wrote 23 bytes to notes\.txt/);

    // A second question: answered first through A, so it goes away in B's page.
    cluster.emulator.script([reply.toolUse({ name: 'edit_file', input: { path: 'notes.txt', old_string: 'hello', new_string: 'hello, world' } }), reply.text('edited')]);
    await creator.request(SessionPrompt, { sessionId, content: 'edit the notes' });
    await card.waitFor();
    assert.deepEqual(await page.locator('#conversation details.tool[data-tool=edit_file] .diff .line:not(.ctx)').allInnerTexts(), ['- hello', '+ hello, world']);
    const asked = await waitForEvent(creator, sessionId, (e) => e.type === 'permission.requested' && e.data.tool === 'edit_file');
    await creator.request(PermissionAnswer, { sessionId, toolUseId: String(asked.data.toolUseId), decision: 'allow' });
    await card.waitFor({ state: 'detached' });
    events = await settle(creator, sessionId);
    await pageCaughtUp(page, events);
    assert.match(await page.locator('#conversation details.tool[data-tool=edit_file] .permission').innerText(), /Permission: allow by creator/);
    await page.locator('#conversation .msg.assistant', { hasText: 'edited' }).waitFor();
    await browser.shot('4-answered-elsewhere');
    creator.close();
  });
});

describe('web client, observer and reconnect', () => {
  let emulator: ModelEmulator;
  let daemon: ListeningDaemon;
  const browsers: TestBrowser[] = [];
  before(async () => {
    emulator = await startModelEmulator({ apiKey: API_KEY });
    daemon = await startListeningDaemon({ env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' } });
  });
  after(async () => {
    for (const browser of browsers) await browser.close();
    await daemon?.dispose();
    await emulator?.close();
  });

  it('keeps an observer read-only and reconnects a controller after a daemon restart with no gap', async () => {
    const local = await daemon.client();
    const sessionId = await createSession(local, { title: 'watched and resumed' });
    // The first turn's sandbox is killed mid-call: the page shows the notices and the sandbox_lost result.
    emulator.script([reply.toolUse({ name: 'bash', input: { command: 'kill -KILL $PPID; sleep 5' } }), reply.text('first answer')]);
    await local.request(SessionPrompt, { sessionId, content: 'first' });
    await settle(local, sessionId);
    local.close();

    const observer = await openBrowser(daemon.origin, daemon.cert, 'observer');
    browsers.push(observer);
    await logIn(observer, await createToken(daemon.layout, ['--observer', '--name', 'watcher']));
    await observer.page.click(`#sessions li[data-session-id="${sessionId}"]`);
    await observer.page.locator('#conversation .msg.assistant', { hasText: 'first answer' }).waitFor();
    assert.equal((await observer.page.locator('#conversation details.tool[data-tool=bash] .badge').innerText()).trim(), 'sandbox_lost');
    await observer.page.locator('#conversation .notice.info', { hasText: 'Sandbox ready' }).first().waitFor();
    await observer.page.locator('#conversation .notice.error', { hasText: 'Sandbox lost' }).waitFor();
    assert.equal(await observer.page.isVisible('#prompt-form'), false, 'no prompt box for an observer');
    assert.equal(await observer.page.isVisible('#read-only'), true);
    // Even the page's own script, with the login cookie, cannot prompt: the daemon refuses.
    const refused = await observer.page.evaluate(
      (id) =>
        new Promise<unknown>((resolve) => {
          const ws = new WebSocket(`wss://${(globalThis as unknown as { location: { host: string } }).location.host}/rpc`);
          ws.onmessage = (m) => {
            const message = JSON.parse(String(m.data)) as { id: number; error?: { code: number } };
            if (message.id === 1) ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'session/prompt', params: { sessionId: id, content: 'sneaky' } }));
            if (message.id === 2) resolve(message.error?.code);
          };
          ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '1.0', clientInfo: { name: 'sneaky' } } }));
        }),
      sessionId,
    );
    assert.equal(refused, -33018, 'TokenForbids');
    await observer.shot('1-read-only');

    const controller = await openBrowser(daemon.origin, daemon.cert, 'reconnect');
    browsers.push(controller);
    await logIn(controller, await createToken(daemon.layout, ['--controller', '--name', 'laptop']));
    await controller.page.click(`#sessions li[data-session-id="${sessionId}"]`);
    await controller.page.locator('#conversation .msg.assistant', { hasText: 'first answer' }).waitFor();

    await daemon.kill('SIGTERM');
    await controller.page.waitForSelector('#connection[data-state=reconnecting]');
    await controller.shot('2-reconnecting');
    daemon = await daemon.restart();
    await controller.page.waitForSelector('#connection[data-state=connected]');
    await observer.page.waitForSelector('#connection[data-state=connected]');

    emulator.script([reply.text('second answer, after the restart', { chunks: 6 })]);
    await controller.page.fill('#prompt-text', 'second');
    await controller.page.click('#prompt-form button[type=submit]');
    await controller.page.locator('#conversation .msg.assistant', { hasText: 'second answer, after the restart' }).waitFor();
    const again = await daemon.client();
    const events = await settle(again, sessionId);
    again.close();
    for (const browser of [controller, observer]) {
      await pageCaughtUp(browser.page, events);
      assert.deepEqual(await browser.page.locator('#conversation .msg.user').allInnerTexts(), ['first', 'second']);
      assert.deepEqual(await browser.page.locator('#conversation .msg.assistant').allInnerTexts(), ['first answer', 'second answer, after the restart']);
    }
    assert.equal((await allEvents(await daemon.client(), sessionId)).length, events.length);
    await controller.shot('3-after-restart');
  });
});
