import * as vscode from 'vscode';
import type { SessionInfo } from '../../../protocol/index.js';
import { Services } from './services.js';
import { SessionsTree } from './sessions-view.js';

let services: Services | undefined;

/**
 * Entry point. Commands and the tree view are registered once; the services behind
 * them (connection, state, panels) are rebuilt when `agentd.path` or `agentd.dataDir`
 * change, since either can mean another executable or another daemon.
 */
export function activate(context: vscode.ExtensionContext): void {
  const version = String((context.extension.packageJSON as { version?: string }).version ?? '0.0.0');
  const provider = new SessionsTree();
  const tree = vscode.window.createTreeView('agentd.sessions', { treeDataProvider: provider });
  const start = () => {
    services?.dispose();
    services = new Services(context.extensionUri, tree, provider, version);
  };
  start();

  const withSession = (run: (s: Services, sessionId: string) => Promise<void> | void) => async (arg?: SessionInfo) => {
    const s = services!;
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
        await services!.newSession();
      } catch (error) {
        void vscode.window.showErrorMessage(`agentd: ${(error as Error).message}`);
      }
    }),
    vscode.commands.registerCommand('agentd.openSession', withSession((s, id) => s.openChat(id))),
    vscode.commands.registerCommand('agentd.interrupt', withSession((s, id) => s.interrupt(id))),
    vscode.commands.registerCommand('agentd.fork', withSession((s, id) => s.fork(id))),
    vscode.commands.registerCommand('agentd.archive', withSession((s, id) => s.archive(id))),
    vscode.commands.registerCommand('agentd.refresh', () => services?.sessions.refresh()),
    vscode.commands.registerCommand('agentd.showApprovals', () => services?.showApprovals()),
    vscode.commands.registerCommand('agentd.showConnection', () => services?.showFailure()),
    vscode.commands.registerCommand('agentd.startDaemon', () => services?.connection.startDaemon()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('agentd.path') || e.affectsConfiguration('agentd.dataDir')) start();
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
