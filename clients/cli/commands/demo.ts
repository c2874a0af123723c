import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonStop, dataLayout, knownEvent, SessionCreate, SessionEvents, type DataLayout } from '../../../protocol/index.js';
import { connect, type AgentdClient } from '../../lib/client.js';
import type { Command } from '../context.js';
import { DEMO_FILES, DEMO_PROMPT, demoAgent } from '../demo/agent.js';
import { TurnView } from '../turn-view.js';
import { exitCodeFor, promptAndFollow } from './run.js';

const AGENTD_BIN = fileURLToPath(new URL('../../../bin/agentd.cjs', import.meta.url));
/** The emulator accepts only this key, so a demo daemon can never reach a real API with a real one. */
const DEMO_KEY = 'agentd-demo-offline-key';
const BANNER = 'agentd demo — offline scripted model, no API key used';

function writeProject(workspace: string): void {
  for (const [path, text] of Object.entries(DEMO_FILES)) {
    mkdirSync(dirname(join(workspace, path)), { recursive: true });
    writeFileSync(join(workspace, path), text);
  }
}

/**
 * Its own daemon, in its own data dir, whose model is the in-process emulator. In its
 * own process group, so that Ctrl-C in the terminal reaches only this command, which
 * turns it into a session interrupt.
 */
function startDemoDaemon(layout: DataLayout, modelUrl: string): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, AGENTD_HOME: layout.home, ANTHROPIC_BASE_URL: modelUrl, ANTHROPIC_API_KEY: DEMO_KEY };
  delete env.ANTHROPIC_AUTH_TOKEN;
  const log = openSync(layout.logFile, 'a', 0o600);
  try {
    // The demo model's commands are scripted here, so it may run at whatever isolation the machine
    // has (it says so when that is weaker than bubblewrap); a real model's sessions get the floor.
    return spawn(process.execPath, [AGENTD_BIN, 'daemon', '--isolation-floor', 'none'], { detached: true, stdio: ['ignore', 'ignore', log], cwd: '/', env });
  } finally {
    closeSync(log);
  }
}

async function connectWhenReady(layout: DataLayout, daemon: ChildProcess, version: string): Promise<AgentdClient> {
  const exited = new Promise<never>((_, reject) =>
    daemon.once('exit', (code) => reject(new Error(`the demo daemon exited (code ${code}) before it was ready; see ${layout.logFile}:\n${tail(layout.logFile)}`))),
  );
  exited.catch(() => undefined);
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await Promise.race([connect({ layout, autostart: false, clientName: 'agentd-demo', clientVersion: version }), exited]);
    } catch (error) {
      if (daemon.exitCode !== null || daemon.signalCode !== null || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-10).join('\n');
  } catch {
    return '(no log)';
  }
}

async function stopDaemon(client: AgentdClient | undefined, daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  try {
    if (!client) throw new Error('not connected');
    await client.request(DaemonStop, {});
  } catch {
    daemon.kill('SIGTERM');
  }
  const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Weaker isolation than bubblewrap is never silent: say what the sandbox had and how to get more. */
async function isolationNote(client: AgentdClient, sessionId: string): Promise<string> {
  const { events } = await client.request(SessionEvents, { sessionId, types: ['sandbox.provisioned'], limit: 1 });
  const provisioned = events[0] && knownEvent(events[0]);
  const isolation = provisioned?.type === 'sandbox.provisioned' ? provisioned.data.isolation : undefined;
  if (isolation === undefined || isolation === 'bwrap') return '';
  return `\nnote: the sandbox ran at isolation level "${isolation}", weaker than bubblewrap (not usable here);\n      install it for full isolation, e.g. apt-get install -y bubblewrap\n`;
}

export const demo: Command = {
  usage: [
    'agentd demo',
    '',
    'Runs one real session end to end, offline and without an API key: a separate daemon in a temp',
    'data dir, the real harness and sandbox, on a tiny temp project with a failing check. The model is',
    "a scripted stand-in (the Messages-API emulator, replies from clients/cli/demo/agent.ts) that reads",
    'files, runs the check, edits the bug and runs the check again, each step decided from the tool',
    'results it is sent. The temp dir (workspace, data dir, daemon log) is kept and printed at the end.',
  ].join('\n'),
  summary: 'see a whole agent session run, offline: real daemon, harness and sandbox, scripted model',
  options: {},
  args: [],
  async run(_args, ctx) {
    const root = mkdtempSync(join(tmpdir(), 'agentd-demo-'));
    const workspace = join(root, 'workspace');
    const layout = dataLayout(join(root, 'home'));
    mkdirSync(layout.home, { recursive: true, mode: 0o700 });
    writeProject(workspace);
    // Loaded only here, keeping other commands' start-up fast.
    const { startModelEmulator } = await import('../demo/model-emulator.js');
    const emulator = await startModelEmulator({ apiKey: DEMO_KEY, defaultReply: demoAgent });
    const out = process.stdout;
    out.write(`${BANNER}\n\n`);
    out.write(`workspace  ${workspace}\n`);
    const daemon = startDemoDaemon(layout, emulator.url);
    let client: AgentdClient | undefined;
    let code = 1;
    let sessionId: string | undefined;
    try {
      client = await connectWhenReady(layout, daemon, ctx.version);
      out.write(`daemon     pid ${daemon.pid}, data dir ${layout.home}\n`);
      sessionId = (
        await client.request(SessionCreate, {
          workspace,
          title: 'agentd demo',
          model: 'demo-scripted-model',
          permissions: { default: 'allow' },
        })
      ).sessionId;
      out.write(`session    ${sessionId}\n\n> ${DEMO_PROMPT}\n\n`);
      // Everything on stdout, in order: the demo is one story, read top to bottom.
      const view = new TurnView({ text: out, info: out, textPrefix: '[demo model] ' });
      code = exitCodeFor(await promptAndFollow(client, sessionId, DEMO_PROMPT, view), 'agentd demo', sessionId);
      out.write(await isolationNote(client, sessionId));
    } catch (error) {
      process.stderr.write(`agentd demo: ${(error as Error).message}\n`);
      code = 1;
    } finally {
      await stopDaemon(client, daemon);
      client?.close();
      await emulator.close();
    }
    const browse = sessionId ? `AGENTD_HOME=${layout.home} npx agentd log ${sessionId}` : '(no session was created)';
    out.write(
      [
        '',
        `demo ${code === 0 ? 'finished' : 'ended early'}; its daemon is stopped, and everything is kept in ${root}:`,
        `  workspace    ${workspace}`,
        `  session log  ${browse}`,
        `               (starts a daemon on that data dir; stop it with AGENTD_HOME=${layout.home} npx agentd stop)`,
        `  daemon log   ${layout.logFile}`,
        `  remove all   rm -rf ${root}`,
        '',
      ].join('\n'),
    );
    return code;
  },
};
