/**
 * The packaged extension bundle (dist/extension.js as vsce ships it), activated in a
 * recording stand-in for the VS Code API, against a real daemon through a real
 * `agentd stdio`: a session made with the CLI shows up in the sessions view, opening
 * it renders the chat webview (strict CSP), a prompt from the webview runs a turn
 * whose tool call is approved through the quick pick, and a missing `agentd` gives
 * the message with the fix; with `agentd.remote`, the same over wss:// with the token
 * from secret storage. No VS Code binary is needed.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AgentdError, ErrorCode, SessionAttach, SessionGet, SessionPrompt } from '../protocol/index.js';
import { answeringClient, allEvents, API_KEY, createSession, ofType, settle, startAgentRig, workspace, type AgentRig } from './support/agent.js';
import { AGENTD_BIN, runAgentd } from './support/daemon.js';
import { reply, startModelEmulator, type ModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { createToken, startListeningDaemon, type ListeningDaemon } from './support/remote.js';
import { processes } from './support/procs.js';
import { until } from './support/until.js';

const require = createRequire(import.meta.url);

function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'clients/vscode/package.json'))) return dir;
  }
  throw new Error('no repository root above this test');
}

type Listener = (value: any) => void;
const event = (listeners: Set<Listener>) => (listener: Listener) => {
  listeners.add(listener);
  return { dispose: () => listeners.delete(listener) };
};

/** Just enough of the `vscode` module for the extension, recording what it shows. */
function fakeVscode(config: Record<string, string>, folder: string) {
  const commands = new Map<string, (...args: any[]) => any>();
  const configListeners = new Set<Listener>();
  const shown = { errors: [] as string[], panels: [] as any[], picks: [] as any[], trees: [] as any[], statusMessages: [] as string[], warnings: [] as string[] };
  /** What the user types into the next input boxes, and whether they confirm the next warnings. */
  const user = { inputs: [] as string[], confirms: [] as boolean[] };
  class EventEmitter {
    private readonly listeners = new Set<Listener>();
    event = event(this.listeners);
    fire(value?: unknown) {
      for (const l of [...this.listeners]) l(value);
    }
    dispose() {
      this.listeners.clear();
    }
  }
  const uri = (path: string): any => ({ fsPath: path, path, toString: () => `vscode-resource:${path}` });
  const api = {
    EventEmitter,
    TreeItem: class {
      constructor(public label: string, public collapsibleState: number) {}
    },
    TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 }, // VS Code's values
    ThemeIcon: class {
      constructor(public id: string, public color?: unknown) {}
    },
    ThemeColor: class {
      constructor(public id: string) {}
    },
    MarkdownString: class {
      value = '';
      appendMarkdown(text: string) {
        this.value += text;
        return this;
      }
    },
    StatusBarAlignment: { Left: 1, Right: 2 },
    ViewColumn: { Active: -1 },
    Uri: { joinPath: (base: any, ...parts: string[]) => uri(join(base.fsPath, ...parts)) },
    env: { clipboard: { writeText: async () => undefined } },
    commands: {
      registerCommand: (id: string, fn: (...args: any[]) => any) => (commands.set(id, fn), { dispose: () => commands.delete(id) }),
      executeCommand: async (id: string, ...args: any[]) => commands.get(id)?.(...args),
    },
    workspace: {
      workspaceFolders: [{ uri: uri(folder) }],
      getConfiguration: () => ({ get: (key: string) => config[key] }),
      onDidChangeConfiguration: event(configListeners),
      onDidChangeWorkspaceFolders: () => ({ dispose() {} }),
    },
    window: {
      createTreeView: (_id: string, options: { treeDataProvider: any }) => {
        const tree = { provider: options.treeDataProvider, message: undefined as string | undefined, dispose() {} };
        shown.trees.push(tree);
        return tree;
      },
      createStatusBarItem: () => ({ text: '', show() {}, hide() {}, dispose() {} }),
      setStatusBarMessage: (text: string) => (shown.statusMessages.push(text), { dispose() {} }),
      showErrorMessage: async (message: string) => (shown.errors.push(message), undefined),
      showInformationMessage: async () => undefined,
      // A confirmation: the user confirms unless told otherwise.
      showWarningMessage: async (message: string, _options: unknown, ...actions: string[]) => (shown.warnings.push(message), user.confirms.shift() ?? true ? actions[0] : undefined),
      showInputBox: async (options: { validateInput?: (value: string) => string | undefined }) => {
        const value = user.inputs.shift();
        if (value !== undefined && options.validateInput?.(value)) throw new Error(`the input box refused ${value}: ${options.validateInput(value)}`);
        return value;
      },
      createQuickPick: () => {
        const accept = new Set<Listener>();
        const hide = new Set<Listener>();
        const pick: any = {
          items: [],
          selectedItems: [],
          visible: false,
          onDidAccept: event(accept),
          onDidHide: event(hide),
          show: () => (pick.visible = true),
          hide: () => {
            pick.visible = false;
            for (const l of [...hide]) l(undefined);
          },
          dispose: () => undefined,
          choose(label: RegExp) {
            pick.selectedItems = pick.items.filter((i: { label: string }) => label.test(i.label));
            for (const l of [...accept]) l(undefined);
          },
        };
        shown.picks.push(pick);
        return pick;
      },
      createWebviewPanel: (_type: string, title: string) => {
        const receive = new Set<Listener>();
        const disposed = new Set<Listener>();
        const panel: any = {
          title,
          visible: true,
          posted: [] as any[],
          webview: {
            html: '',
            cspSource: 'vscode-resource:',
            asWebviewUri: (u: any) => u,
            onDidReceiveMessage: event(receive),
            postMessage: async (message: unknown) => (panel.posted.push(message), true),
          },
          send: (message: unknown) => {
            for (const l of [...receive]) l(message);
          },
          reveal() {},
          onDidChangeViewState: () => ({ dispose() {} }),
          onDidDispose: event(disposed),
          dispose: () => {
            for (const l of [...disposed]) l(undefined);
            disposed.clear();
          },
        };
        shown.panels.push(panel);
        return panel;
      },
    },
    fireConfigChange: () => {
      for (const l of [...configListeners]) l({ affectsConfiguration: (key: string) => key.startsWith('agentd') });
    },
  };
  return { api, shown, commands, user };
}

/** The extension bundle as vsce ships it, built into `dir`. */
function buildBundle(dir: string): string {
  const bundle = join(dir, 'extension.js');
  const built = spawnSync(process.execPath, [join(repoRoot(), 'clients/vscode/scripts/package.mjs'), '--bundle-only', '--outfile', bundle], { encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  return bundle;
}

/** An `agentd` executable in `dir`, as a user's `which agentd` would give (agentd.path points at it). */
function agentdExecutable(dir: string): string {
  const agentd = join(dir, 'agentd');
  writeFileSync(agentd, `#!/bin/sh\nexec "${process.execPath}" "${AGENTD_BIN}" "$@"\n`);
  chmodSync(agentd, 0o755);
  return agentd;
}

/** VS Code's secret storage, in memory. */
function fakeSecrets(initial: Record<string, string> = {}) {
  const values = new Map(Object.entries(initial));
  const changed = new Set<Listener>();
  return {
    get: async (key: string) => values.get(key),
    store: async (key: string, value: string) => {
      values.set(key, value);
      for (const l of [...changed]) l({ key });
    },
    delete: async (key: string) => {
      values.delete(key);
      for (const l of [...changed]) l({ key });
    },
    onDidChange: event(changed),
  };
}

/** Loads the bundle with `vscode` resolved to the stand-in, and activates it. */
function activateIn(bundle: string, dir: string, config: Record<string, string>, folder: string, secrets = fakeSecrets()) {
  const { api, shown, commands, user } = fakeVscode(config, folder);
  const Module = require('node:module') as { _load: (request: string, ...rest: unknown[]) => unknown };
  const load = Module._load;
  Module._load = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? api : load.call(this, request, ...rest);
  };
  // A fresh copy per activation: the bundle keeps its services in a module variable.
  delete require.cache[bundle];
  const extension = require(bundle) as { activate(context: unknown): void; deactivate(): void };
  Module._load = load;
  const context = { subscriptions: [] as Array<{ dispose(): void }>, extensionUri: { fsPath: dir, path: dir }, extension: { packageJSON: { version: '0.1.0' } }, secrets };
  extension.activate(context);
  return { api, shown, commands, user, extension, context, secrets };
}

describe('vscode extension bundle in a stand-in host', () => {
  let rig: AgentRig;
  let dir: string;
  let bundle: string;
  before(async () => {
    rig = await startAgentRig();
    dir = mkdtempSync(join(tmpdir(), 'agentd-vscode-host-'));
    bundle = buildBundle(dir);
  });
  after(async () => {
    await rig.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists a CLI session, renders its chat, runs a prompt with an approval, and explains a missing agentd', async () => {
    const agentd = agentdExecutable(dir);
    const folder = workspace();
    const cli = await runAgentd(rig.daemon.layout, ['new', '--workspace', folder, '--title', 'started from the CLI', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const sessionId = /s_[0-9a-z]+/.exec(cli.stdout)![0];

    const config: Record<string, string> = { path: agentd, dataDir: rig.daemon.layout.home };
    const { api, shown, commands, user, extension, context } = activateIn(bundle, dir, config, folder);
    try {
      const tree = shown.trees[0];
      const listed = await until(() => (tree.provider.getChildren() as Array<{ sessionId: string }>).find((s) => s.sessionId === sessionId), 'the CLI session in the view');
      const item = tree.provider.getTreeItem(listed);
      assert.equal(item.label, 'started from the CLI');
      assert.match(item.description, /^idle · /);
      assert.equal(item.contextValue, 'session.idle');

      await commands.get('agentd.openSession')!(listed);
      const panel = shown.panels[0];
      const html: string = panel.webview.html;
      assert.match(html, /Content-Security-Policy" content="default-src 'none'; style-src vscode-resource:; script-src 'nonce-[^']+'/);
      assert.doesNotMatch(html, /https?:\/\//, 'no remote content');
      panel.send({ type: 'ready' });
      await until(() => panel.posted.find((m: any) => m.type === 'render' && /No messages yet/.test(m.html)), 'the empty conversation');

      rig.emulator.script([reply.toolUse({ name: 'bash', input: { command: 'echo from vscode' } }), reply.text('all done', { chunks: 4, chunkDelayMs: 20 })]);
      panel.send({ type: 'prompt', text: 'run it' });
      const pick = await until(() => shown.picks.find((p: any) => p.visible), 'the approval quick pick');
      assert.match(pick.title, /bash: echo from vscode/);
      assert.ok(pick.title.includes(`session "started from the CLI" (${sessionId})`), `the quick pick says which session asks: ${pick.title}`);
      assert.deepEqual(pick.items.map((i: { label: string }) => i.label.replace(/\$\([^)]*\) /, '')), ['Allow', 'Always allow', 'Deny']);
      pick.choose(/Always allow/);
      const final = await until(
        () => panel.posted.findLast((m: any) => m.type === 'render' && /all done/.test(m.html) && m.status === 'idle'),
        'the finished turn in the chat',
      );
      assert.match(final.html, /class="msg user"[^]*run it/);
      assert.match(final.html, /<details class="tool done"[^]*echo from vscode[^]*<span class="badge ok">done<\/span>/);
      assert.match(final.html, /Permission: allow always by vscode#\d+/);
      const log = await settle(await rig.daemon.client(), sessionId);
      assert.equal(log.find((e) => e.type === 'permission.resolved')?.data.decision, 'allow_always');
      assert.deepEqual((await allEvents(await rig.daemon.client(), sessionId)).length, log.length);

      // Another client answers a question first: the quick pick disappears.
      const picksBefore = shown.picks.length;
      let shownInVscode!: () => void;
      const onScreen = new Promise<void>((r) => (shownInVscode = r));
      const other = await answeringClient(rig.daemon.layout, 'other-editor', async () => (await onScreen, 'allow'));
      await other.request(SessionAttach, { sessionId, role: 'controller' });
      try {
        rig.emulator.script([reply.toolUse({ name: 'write_file', input: { path: 'note.txt', content: 'hi' } }), reply.text('written')]);
        panel.send({ type: 'prompt', text: 'write a note' });
        const second = await until(() => shown.picks.length > picksBefore && shown.picks.at(-1).visible && shown.picks.at(-1), 'the second quick pick');
        assert.match(second.title, /write_file: note\.txt/);
        shownInVscode();
        await until(() => !second.visible, 'the quick pick to be withdrawn');
        await until(() => panel.posted.findLast((m: any) => m.type === 'render' && /written/.test(m.html) && m.status === 'idle'), 'the second turn');
        assert.match(panel.posted.at(-1).html, /Permission: allow by other-editor#\d+/);
      } finally {
        other.close();
      }

      // Interrupt from the chat's button: the running reply stops and is marked.
      rig.emulator.script([reply.hang()]);
      panel.send({ type: 'prompt', text: 'take your time' });
      await until(() => panel.posted.findLast((m: any) => m.type === 'render' && /take your time/.test(m.html) && m.status === 'running'), 'the turn to run');
      panel.send({ type: 'interrupt' });
      const interrupted = await until(() => panel.posted.findLast((m: any) => m.type === 'render' && /Interrupted/.test(m.html) && m.status === 'idle'), 'the interrupted turn');
      assert.match(interrupted.html, /class="notice warning"[^>]*>Interrupted/);

      // Fork from before the first prompt's message: a new session opens in a new chat.
      const firstUser = /class="fork" data-at="(\d+)"/.exec(interrupted.html)!;
      panel.send({ type: 'fork', at: Number(firstUser[1]) });
      const forkPanel = await until(() => shown.panels[1], 'the forked session chat');
      forkPanel.send({ type: 'ready' });
      const forked = await until(() => forkPanel.posted.findLast((m: any) => m.type === 'render' && /Forked from/.test(m.html)), 'the forked conversation');
      assert.match(forked.html, new RegExp(`Forked from ${sessionId}`));
      assert.doesNotMatch(forked.html, /run it/, 'the fork holds the log before the chosen message only');
      await until(
        () => (tree.provider.getChildren() as Array<{ forkedFrom?: { sessionId: string } }>).find((s) => s.forkedFrom?.sessionId === sessionId),
        'the fork in the sessions view (its workspace is a copy outside the folder)',
      );

      // Rename and roll back from the sessions view.
      user.inputs.push('renamed in vscode');
      await commands.get('agentd.rename')!(listed);
      await until(() => (tree.provider.getChildren() as Array<{ sessionId: string; title?: string }>).find((s) => s.sessionId === sessionId && s.title === 'renamed in vscode'), 'the new title in the view');
      const daemonSide = await rig.daemon.client();
      user.inputs.push('1');
      await commands.get('agentd.rollback')!(listed);
      const rolledBack = (await settle(daemonSide, sessionId)).filter((e) => e.type === 'session.rolled_back');
      assert.equal(rolledBack.length, 1);
      assert.equal(rolledBack[0]!.data.turns, 1);
      assert.ok(shown.statusMessages.includes('agentd: rolled back 1 turn'));

      // Archive from the sessions view: the session turns read-only.
      await commands.get('agentd.archive')!(listed);
      await until(() => panel.posted.findLast((m: any) => m.type === 'render' && m.status === 'archived'), 'the archived status in the chat');
      await until(() => (tree.provider.getChildren() as Array<{ sessionId: string; status: string }>).find((s) => s.sessionId === sessionId && s.status === 'archived'), 'the archived status in the view');

      // Delete from the sessions view: nothing happens until the user confirms; then it is gone, its chat closed.
      user.confirms.push(false);
      await commands.get('agentd.delete')!(listed);
      assert.match(shown.warnings.at(-1)!, /Delete "renamed in vscode" for good\?/);
      assert.equal((await daemonSide.request(SessionGet, { sessionId })).sessionId, sessionId, 'declined: still there');
      let closed = false;
      panel.onDidDispose(() => (closed = true));
      await commands.get('agentd.delete')!(listed);
      await assert.rejects(daemonSide.request(SessionGet, { sessionId }), (e: unknown) => e instanceof AgentdError && e.code === ErrorCode.SessionNotFound);
      await until(() => !(tree.provider.getChildren() as Array<{ sessionId: string }>).some((s) => s.sessionId === sessionId), 'the session gone from the view');
      assert.ok(closed, 'its chat closed');
      daemonSide.close();

      // A wrong agentd.path: the user is told what is wrong and how to fix it.
      config.path = join(dir, 'no-such-agentd');
      api.fireConfigChange();
      const error = await until(() => shown.errors.find((m) => /not found/.test(m)), 'the missing agentd message');
      assert.match(error, /agentd\.path/);
      assert.match(error, /npm ci && npm install -g \./);
      assert.match(tree.message ?? '', /Not connected to agentd/);
    } finally {
      extension.deactivate();
      for (const d of context.subscriptions) d.dispose();
    }
  });
  it('shows a sub-agent under the session that started it, saying whose it is', async () => {
    const folder = workspace();
    const owner = await rig.daemon.client();
    const parent = await createSession(owner, { workspace: folder, title: 'release notes', permissions: { default: 'allow' } });
    // The parent's first call starts a sub-agent, which answers; then the parent answers.
    rig.emulator.script([reply.toolUse({ name: 'agent', input: { prompt: 'list the fixes', title: 'fixes' } }), reply.text('3 fixes'), reply.text('notes written')]);
    await owner.request(SessionPrompt, { sessionId: parent, content: 'write the release notes' });
    const events = await settle(owner, parent);
    const child = String(ofType(events, 'tool.started')[0]!.data.childSessionId);
    await settle(owner, child);
    owner.close();

    const { shown, extension, context } = activateIn(bundle, dir, { path: agentdExecutable(dir), dataDir: rig.daemon.layout.home }, folder);
    try {
      const tree = shown.trees[0];
      type Row = { sessionId: string };
      const top = await until(() => (tree.provider.getChildren() as Row[]).find((s) => s.sessionId === parent), 'the parent in the view');
      assert.ok(!(tree.provider.getChildren() as Row[]).some((s) => s.sessionId === child), 'the sub-agent is not a top-level session');
      const under = tree.provider.getChildren(top) as Row[];
      assert.deepEqual(under.map((s) => s.sessionId), [child]);
      const parentItem = tree.provider.getTreeItem(top);
      const childItem = tree.provider.getTreeItem(under[0]!);
      assert.equal(parentItem.collapsibleState, 2, 'the parent is shown expanded');
      assert.equal(childItem.label, 'fixes');
      assert.match(childItem.tooltip.value, new RegExp(`Sub-agent of \`${parent}\``));
      // As the sessions view shows them (label, then description).
      console.log(`# sessions view:\n#   ${parentItem.label}  ${parentItem.description}\n#     ${childItem.label}  ${childItem.description}  (tooltip: Sub-agent of ${parent})`);
    } finally {
      extension.deactivate();
      for (const d of context.subscriptions) d.dispose();
    }
  });
});

describe('vscode extension with a remote daemon', () => {
  let daemon: ListeningDaemon;
  let emulator: ModelEmulator;
  let dir: string;
  let bundle: string;
  before(async () => {
    emulator = await startModelEmulator({ apiKey: API_KEY });
    daemon = await startListeningDaemon({ env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY } });
    dir = mkdtempSync(join(tmpdir(), 'agentd-vscode-remote-'));
    bundle = buildBundle(dir);
  });
  after(async () => {
    await daemon?.dispose();
    await emulator?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the daemon over wss:// with the token from secret storage, never in the bridge’s argv or env', async () => {
    const agentd = agentdExecutable(dir);
    const folder = workspace();
    const cli = await runAgentd(daemon.layout, ['new', '--workspace', folder, '--title', 'on the server', '--json']);
    const sessionId = /s_[0-9a-z]+/.exec(cli.stdout)![0];
    const token = await createToken(daemon.layout, ['--controller', '--name', 'vscode']);

    // No token yet: the user is told how to give one.
    const config: Record<string, string> = { path: agentd, remote: daemon.url, remoteCaFile: daemon.cert.certFile };
    const { shown, extension, context, secrets } = activateIn(bundle, dir, config, folder);
    try {
      await until(() => shown.errors.find((m) => /needs a token/.test(m)), 'the missing token message');
      await secrets.store('agentd.remoteToken', token);
      const tree = await until(() => shown.trees[0], 'the sessions view');
      const listed = await until(() => (tree.provider.getChildren() as Array<{ sessionId: string }>).find((s) => s.sessionId === sessionId), 'the server’s session in the view');
      assert.equal(tree.provider.getTreeItem(listed).label, 'on the server');
      const bridges = processes().filter((p) => ['stdio', '--remote', daemon.url].every((part) => p.cmdline.includes(part)));
      assert.ok(bridges.length > 0, 'the bridge runs `agentd stdio --remote`');
      for (const bridge of bridges) {
        assert.ok(!bridge.cmdline.includes(token), 'the token is not in the bridge’s argv');
        assert.ok(!bridge.environ.includes(token), 'the token is not in the bridge’s environment');
      }
    } finally {
      extension.deactivate();
      for (const d of context.subscriptions) d.dispose();
    }
  });
});
