// End-to-end check of the packaged extension in a real VS Code build: the .vsix
// installed in code-server (VS Code in the browser), driven by headless Chromium,
// against a real agentd daemon wired to the Messages-API emulator. Screenshots of the
// sessions view and the chat panel go to $E2E_SHOTS. Not part of `npm test`: it needs
// code-server, Chromium and puppeteer-core installed outside the repository:
//
//   CODE_SERVER=/path/to/code-server  (npm code-server@4.96.4, with its native modules built)
//   CHROMIUM=/usr/bin/chromium        (Debian package `chromium`)
//   PUPPETEER_CORE=/path/to/node_modules/puppeteer-core/lib/esm/puppeteer/puppeteer-core.js
//   AGENTD_BUILD=<repo>/dist          (the compiled repository: npm run build)
//   VSIX=<repo>/.build/agentd-vscode.vsix (npm run package:vscode)
//
//   node clients/vscode/scripts/e2e-code-server.mjs
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const build = resolve(process.env.AGENTD_BUILD ?? join(root, 'dist'));
const load = (path) => import(pathToFileURL(join(build, path)).href);
const { startAgentRig, workspace, settle, API_KEY } = await load('test/support/agent.js');
const { runAgentd, AGENTD_BIN } = await load('test/support/daemon.js');
const { reply } = await load('clients/cli/demo/model-emulator.js');
const { connect } = await load('clients/lib/index.js');
const { SessionPrompt } = await load('protocol/index.js');
const puppeteer = (await import(process.env.PUPPETEER_CORE ?? 'puppeteer-core')).default;
const CODE_SERVER = process.env.CODE_SERVER ?? 'code-server';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const VSIX = resolve(process.env.VSIX ?? join(root, '.build/agentd-vscode.vsix'));
const SHOTS = resolve(process.env.E2E_SHOTS ?? join(tmpdir(), 'agentd-vscode-e2e'));
const work = mkdtempSync(join(tmpdir(), 'agentd-code-server-'));
mkdirSync(SHOTS, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(SHOTS, name) });

const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rig = await startAgentRig();
const home = rig.daemon.layout.home;
const folder = workspace();
writeFileSync(`${folder}/hello.txt`, 'hello\n');
const cli = await runAgentd(rig.daemon.layout, ['new', '--workspace', folder, '--title', 'Fix the build', '--json']);
const sessionId = /s_[0-9a-z]+/.exec(cli.stdout)[0];
log('session', sessionId);

// History made before VS Code opens, by "another editor" that allows tool calls.
const other = await connect({ layout: rig.daemon.layout, autostart: false, clientName: 'other-editor', onPermissionRequest: async () => ({ decision: 'allow' }) });
rig.emulator.script([
  reply.toolUse({ name: 'bash', input: { command: 'ls -la' } }, { text: 'Let me look at the workspace first.' }),
  reply.toolUse({ name: 'bash', input: { command: 'kill -KILL $PPID; sleep 5' } }),
  reply.text('The sandbox was lost while that command ran; the workspace is intact, so I can retry in a fresh sandbox.'),
]);
await other.request(SessionPrompt, { sessionId, content: 'What is in this workspace?' });
await settle(other, sessionId);
other.close();
log('history ready');

// The daemon may be restarted by the extension's bridge (autostart): give it the emulator too.
const daemonEnv = { ANTHROPIC_BASE_URL: rig.emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20' };
const agentd = join(work, 'agentd');
writeFileSync(agentd, `#!/bin/sh\n${Object.entries(daemonEnv).map(([k, v]) => `export ${k}='${v}'`).join('\n')}\nexec "${process.execPath}" "${AGENTD_BIN}" "$@"\n`);
chmodSync(agentd, 0o755);
const dirs = ['--extensions-dir', join(work, 'extensions'), '--user-data-dir', join(work, 'user')];
mkdirSync(join(work, 'user/User'), { recursive: true });
const settings = {
  'agentd.path': agentd, 'agentd.dataDir': home, 'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false,
  'workbench.colorTheme': 'Default Dark Modern', 'telemetry.telemetryLevel': 'off', 'workbench.tips.enabled': false,
};
writeFileSync(join(work, 'user/User/settings.json'), JSON.stringify(settings, null, 2));
const installed = spawnSync(CODE_SERVER, [...dirs, '--install-extension', VSIX], { encoding: 'utf8' });
if (installed.status !== 0) throw new Error(`installing ${VSIX} failed: ${installed.stdout}${installed.stderr}`);
log(installed.stdout.trim().split('\n').at(-1));
const port = 18000 + Math.floor(Math.random() * 1000);
const startCodeServer = () => {
  const child = spawn(CODE_SERVER, ['--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, ...dirs, '--disable-telemetry', '--disable-workspace-trust', folder], { stdio: ['ignore', 'pipe', 'pipe'] });
  csOut = '';
  child.stdout.on('data', (d) => (csOut += d));
  child.stderr.on('data', (d) => (csOut += d));
  return child;
};
const listening = async () => {
  for (let i = 0; !csOut.includes('HTTP server listening'); i++) {
    if (i > 200) throw new Error(`code-server did not start: ${csOut}`);
    await sleep(100);
  }
};
let csOut = '';
let cs = startCodeServer();
await listening();
log('code-server up');
const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'], defaultViewport: { width: 1500, height: 950 } });
let exitCode = 1;
const page = await browser.newPage();
try {
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(folder)}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  log('workbench loaded');
  const agentdIcon = await page.waitForSelector('.activitybar .action-item a[aria-label^="agentd"], .activitybar .action-item[aria-label^="agentd"]', { timeout: 60000 });
  await agentdIcon.click();
  log('agentd view opened');
  const row = await page.waitForSelector('xpath///div[contains(@class,"monaco-list-row")][.//*[contains(text(),"Fix the build")]]', { timeout: 60000 });
  await shot(page, '1-sessions-view.png');
  await row.click();
  log('session clicked');
  // The chat webview: find the frame that holds #conversation with the history.
  const chatFrame = async (test) => {
    for (let i = 0; i < 300; i++) {
      for (const frame of page.frames()) {
        try {
          const text = await frame.evaluate(() => document.querySelector('#conversation')?.innerText ?? null);
          if (text !== null && test(text)) return frame;
        } catch {}
      }
      await sleep(200);
    }
    throw new Error('chat webview not found');
  };
  let frame = await chatFrame((t) => t.includes('Sandbox lost'));
  log('chat shows history with sandbox_lost');
  await sleep(500);
  await shot(page, '2-chat-history.png');

  // A prompt from the CLI while VS Code follows; its tool call needs approval in VS Code.
  rig.emulator.script([
    reply.toolUse({ name: 'bash', input: { command: 'cat hello.txt' } }),
    reply.text('hello.txt says hello. Everything is in order now.', { chunks: 12, chunkDelayMs: 120 }),
  ]);
  const prompted = await runAgentd(rig.daemon.layout, ['prompt', sessionId, 'Read hello.txt please']);
  log('cli prompt', prompted.code, prompted.stderr.trim());
  await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) .quick-input-title', { timeout: 30000 });
  await sleep(500);
  await shot(page, '3-approval-quick-pick.png');
  log('approval shown:', await page.$eval('.quick-input-widget .quick-input-title', (e) => e.textContent));
  await page.keyboard.press('Enter'); // the first item: Allow
  frame = await chatFrame((t) => t.includes('hello.txt says') && !t.includes('Everything is in order now.'));
  await shot(page, '4-streaming.png');
  log('streaming seen');
  frame = await chatFrame((t) => t.includes('Everything is in order now.'));
  await sleep(300);
  // Open the tool call of this turn to show its input and result.
  await frame.evaluate(() => [...document.querySelectorAll('details.tool')].at(-1).open = true);
  await sleep(300);
  await shot(page, '5-chat-final.png');

  // The daemon dies: the extension's bridge restarts it (autostart) and resubscribes
  // the open chat from its last seq; a CLI prompt then shows up once, after the rest.
  await rig.daemon.kill('SIGKILL');
  log('daemon killed');
  rig.emulator.script([reply.text('Back after the daemon restart: nothing missed, nothing twice.')]);
  for (let i = 0; ; i++) {
    const again = await runAgentd(rig.daemon.layout, ['prompt', sessionId, 'Are you still there?'], { env: daemonEnv });
    if (again.code === 0) break;
    if (i > 50) throw new Error(`prompt after restart failed: ${again.stderr}`);
    await sleep(200);
  }
  frame = await chatFrame((t) => t.includes('nothing missed, nothing twice.'));
  await sleep(300);
  await shot(page, '6-after-daemon-restart.png');
  const text = await frame.evaluate(() => document.querySelector('#conversation').innerText);
  log('final conversation:\n' + text);
  const count = (needle) => text.split(needle).length - 1;
  for (const message of ['What is in this workspace?', 'Read hello.txt please', 'Are you still there?', 'Everything is in order now.']) {
    if (count(message) !== 1) throw new Error(`"${message}" shown ${count(message)} times`);
  }

  // A wrong agentd.path from the start: the message says what is wrong and how to fix it.
  cs.kill();
  await new Promise((r) => cs.once('exit', r));
  writeFileSync(join(work, 'user/User/settings.json'), JSON.stringify({ ...settings, 'agentd.path': join(work, 'no-such-agentd') }, null, 2));
  cs = startCodeServer();
  await listening();
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
  const toast = await page.waitForSelector('xpath///div[contains(@class,"notification-toast")][.//*[contains(text(),"was not found")]]', { timeout: 60000 });
  await sleep(500);
  await shot(page, '7-missing-agentd.png');
  log('missing agentd:', await toast.evaluate((e) => e.innerText.replace(/\s+/g, ' ')));
  log(`PASS: screenshots in ${SHOTS}`);
  exitCode = 0;
} catch (error) {
  log('FAILED', error);
  await page.screenshot({ path: join(SHOTS, 'failure.png') }).catch(() => {});
} finally {
  await browser.close();
  // code-server first: while its extension host lives, the extension reconnects and
  // `agentd stdio` would start the daemon again.
  if (cs.exitCode === null && cs.signalCode === null) {
    cs.kill();
    await new Promise((r) => cs.once('exit', r));
  }
  await sleep(1000);
  await runAgentd(rig.daemon.layout, ['stop'], { env: daemonEnv }).catch(() => undefined);
  await rig.dispose();
}
process.exit(exitCode);
