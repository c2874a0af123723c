import * as vscode from 'vscode';
import type { SessionInfo } from '../../../protocol/index.js';
import { REMOTE_TOKEN_KEY, Services } from './services.js';
import { SessionsTree } from './sessions-view.js';

let services: Services | undefined;

/**
 * Entry point. Commands and the tree view are registered once; the services behind
 * them (connection, state, panels) are rebuilt when `agentd.path`, `agentd.dataDir`,
 * `agentd.remote` or the remote token change, since each can mean another daemon.
 */
export function activate(context: vscode.ExtensionContext): void {
  const version = String((context.extension.packageJSON as { version?: string }).version ?? '0.0.0');
  const provider = new SessionsTree();
  const tree = vscode.window.createTreeView('agentd.sessions', { treeDataProvider: provider });
  let generation = 0;
  const start = async () => {
    const mine = ++generation;
    const token = await context.secrets.get(REMOTE_TOKEN_KEY);
    if (mine !== generation) return; // a later start won
    services?.dispose();
    services = new Services(context.extensionUri, tree, provider, version, token);
  };
  void start();

  const withSession = (run: (s: Services, sessionId: string) => Promise<void> | void) => async (arg?: SessionInfo) => {
    const s = services;
    if (!s) return;
    try {
      const sessionId = arg?.sessionId ?? (await pickSession(s));
      if (sessionId) await run(s, sessionId);
    } catch (error) {
      void vscode.window.showErrorMessage(`agentd: ${(error as Error).message}`);
    }
  };
  context.subscriptions.push(
    tree,
    provider,
    vscode.commands.registerCommand('agentd.newSession', async () => {
      try {
        await services?.newSession();
      } catch (error) {
        void vscode.window.showErrorMessage(`agentd: ${(error as Error).message}`);
      }
    }),
    vscode.commands.registerCommand('agentd.openSession', withSession((s, id) => s.openChat(id))),
    vscode.commands.registerCommand('agentd.interrupt', withSession((s, id) => s.interrupt(id))),
    vscode.commands.registerCommand('agentd.fork', withSession((s, id) => s.fork(id))),
    vscode.commands.registerCommand('agentd.archive', withSession((s, id) => s.archive(id))),
    vscode.commands.registerCommand('agentd.rename', withSession((s, id) => s.rename(id))),
    vscode.commands.registerCommand('agentd.delete', withSession((s, id) => s.remove(id))),
    vscode.commands.registerCommand('agentd.rollback', withSession((s, id) => s.rollback(id))),
    vscode.commands.registerCommand('agentd.refresh', () => services?.sessions.refresh()),
    vscode.commands.registerCommand('agentd.showApprovals', () => services?.showApprovals()),
    vscode.commands.registerCommand('agentd.showConnection', () => services?.showFailure()),
    vscode.commands.registerCommand('agentd.startDaemon', () => services?.connection.startDaemon()),
    vscode.commands.registerCommand('agentd.setRemoteToken', async () => {
      const token = await vscode.window.showInputBox({
        title: 'agentd: token for the remote daemon',
        prompt: 'A token from `agentd token create` on the daemon\'s machine; kept in VS Code\'s secret storage.',
        password: true,
        ignoreFocusOut: true,
      });
      if (token?.trim()) await context.secrets.store(REMOTE_TOKEN_KEY, token.trim());
    }),
    vscode.commands.registerCommand('agentd.clearRemoteToken', () => context.secrets.delete(REMOTE_TOKEN_KEY)),
    context.secrets.onDidChange((e) => {
      if (e.key === REMOTE_TOKEN_KEY) void start();
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (['agentd.path', 'agentd.dataDir', 'agentd.remote', 'agentd.remoteCaFile'].some((key) => e.affectsConfiguration(key))) void start();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void services?.sessions.refresh()),
    { dispose: () => deactivate() },
  );
}

export function deactivate(): void {
  services?.dispose();
  services = undefined;
}

async function pickSession(s: Services): Promise<string | undefined> {
  await s.sessions.refresh();
  const picked = await vscode.window.showQuickPick(
    s.sessions.sessions.map((info) => ({ label: info.title || info.sessionId, description: info.status, detail: `${info.sessionId} · ${info.workspace}`, id: info.sessionId })),
    { placeHolder: 'Which agentd session?' },
  );
  return picked?.id;
}
