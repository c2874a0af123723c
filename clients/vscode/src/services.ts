import * as vscode from 'vscode';
import {
  SessionArchive,
  SessionCreate,
  SessionDelete,
  SessionEvents,
  SessionFork,
  SessionInterrupt,
  SessionRename,
  SessionRollback,
  knownEvent,
  type Event,
  type SessionInfo,
} from '../../../protocol/index.js';
import { ApprovalsUi } from './approvals-ui.js';
import { ChatPanel } from './chat-panel.js';
import { ApprovalsState } from './core/approvals.js';
import { INSTALL_COMMAND, INSTALL_HINT, type BridgeCommand } from './core/bridge.js';
import { contentText } from '../../lib/chat-view.js';
import { AgentdConnection, agentdNotFound, type ConnectionState } from './core/connection.js';
import { SessionsState } from './core/sessions.js';
import type { SessionsTree } from './sessions-view.js';

/** The secret storage key of the remote daemon's token. */
export const REMOTE_TOKEN_KEY = 'agentd.remoteToken';

const home = (path: string) => path.replace(/^~(?=$|\/)/, process.env.HOME ?? '~');

/**
 * The bridge command from the settings: `agentd.path stdio`, with `agentd.dataDir` as
 * AGENTD_HOME; with `agentd.remote`, `stdio --remote URL` and the token from VS Code's
 * secret storage (handed over on a pipe, never in argv or env).
 */
export function bridgeFromSettings(remoteToken: string | undefined): BridgeCommand {
  const config = vscode.workspace.getConfiguration('agentd');
  const command = config.get<string>('path')?.trim() || 'agentd';
  const dataDir = config.get<string>('dataDir')?.trim();
  const remote = config.get<string>('remote')?.trim();
  const ca = config.get<string>('remoteCaFile')?.trim();
  const env = { ...process.env };
  if (dataDir) env.AGENTD_HOME = home(dataDir);
  if (!remote) return { command, args: ['stdio'], env };
  if (ca) env.AGENTD_REMOTE_CA = home(ca);
  return { command, args: ['stdio', '--remote', remote], env, ...(remoteToken ? { secret: remoteToken } : {}) };
}

/**
 * Everything that lives as long as one connection configuration: the connection,
 * the sessions list and view, open chats, approvals. Settings changes replace it.
 */
export class Services implements vscode.Disposable {
  readonly connection: AgentdConnection;
  readonly approvals = new ApprovalsState();
  readonly sessions: SessionsState;
  private readonly panels = new Map<string, ChatPanel>();
  private readonly approvalsUi: ApprovalsUi;
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 99);
  private readonly disposables: vscode.Disposable[] = [];
  private shownError: string | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly view: vscode.TreeView<SessionInfo>,
    tree: SessionsTree,
    version: string,
    remoteToken: string | undefined,
  ) {
    this.connection = new AgentdConnection({
      bridge: bridgeFromSettings(remoteToken),
      clientName: 'vscode',
      clientVersion: version,
      onPermissionRequest: this.approvals.handler,
    });
    this.sessions = new SessionsState(this.connection, () => (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath));
    tree.attach(this.sessions);
    this.approvalsUi = new ApprovalsUi(this.approvals);
    const state = this.connection.onState((s) => this.showState(s));
    this.disposables.push({ dispose: () => state.dispose() }, this.approvals.withdrawOnDisconnect(this.connection));
    this.status.command = 'agentd.showConnection';
    this.showState(this.connection.state);
    this.connection.start();
    this.sessions.start();
  }

  title(sessionId: string): string {
    return this.sessions.sessions.find((s) => s.sessionId === sessionId)?.title || sessionId;
  }

  private showState(state: ConnectionState): void {
    const text: Record<ConnectionState['kind'], string> = {
      connected: '$(pass) agentd',
      idle: '$(sync~spin) agentd',
      connecting: '$(sync~spin) agentd',
      failed: '$(error) agentd',
      daemonStopped: '$(debug-stop) agentd stopped',
      closed: '$(circle-slash) agentd',
    };
    this.status.text = text[state.kind];
    this.status.tooltip =
      state.kind === 'failed' || state.kind === 'daemonStopped' ? state.message : state.kind === 'connecting' ? 'connecting to the agentd daemon…' : `agentd: ${state.kind}`;
    this.status.command = state.kind === 'daemonStopped' ? 'agentd.startDaemon' : 'agentd.showConnection';
    this.status.show();
    this.view.message =
      state.kind === 'failed' ? `Not connected to agentd: ${state.message}`
      : state.kind === 'daemonStopped' ? `${state.message}. Run "agentd: Start the Daemon" to start it.`
      : state.kind === 'connecting' && state.attempt > 1 ? 'Reconnecting to agentd…'
      : undefined;
    if (state.kind === 'connected') this.shownError = undefined;
    // Stopped on purpose: say so once, and start it again only if the user says so.
    if (state.kind === 'daemonStopped' && state.message !== this.shownError) {
      this.shownError = state.message;
      void vscode.window.showWarningMessage(state.message, 'Start agentd').then((choice) => choice && this.connection.startDaemon());
    }
    // A missing agentd at once; other failures (a daemon restarting) only when they persist.
    if (state.kind === 'failed' && (agentdNotFound(state) || state.failures >= 3) && state.message !== this.shownError) {
      this.shownError = state.message;
      void this.showFailure(state);
    }
  }

  /** The connection error with what to do about it. */
  async showFailure(state: ConnectionState = this.connection.state): Promise<void> {
    if (state.kind !== 'failed') {
      void vscode.window.showInformationMessage(`agentd: ${state.kind}`);
      return;
    }
    const actions = agentdNotFound(state) ? ['Open Settings', 'Copy Install Command'] : ['Open Settings', 'Show Daemon Log Location'];
    const choice = await vscode.window.showErrorMessage(state.message, ...actions);
    if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'agentd.');
    if (choice === 'Copy Install Command') await vscode.env.clipboard.writeText(INSTALL_COMMAND);
    if (choice === 'Show Daemon Log Location') void vscode.window.showInformationMessage(`Daemon diagnostics are in $AGENTD_HOME/daemon.log (default ~/.agentd/daemon.log). ${INSTALL_HINT}`);
  }

  showApprovals(): void {
    if (this.approvals.pending().length === 0) void vscode.window.showInformationMessage('agentd: no approvals pending');
    else this.approvalsUi.showNext(true);
  }

  openChat(sessionId: string): void {
    const open = this.panels.get(sessionId);
    if (open) return open.reveal();
    // A chat opened on a session makes this window one of its controllers: it answers its questions.
    this.connection.control(sessionId).catch((error: Error) => void vscode.window.showErrorMessage(`agentd: ${error.message}`));
    const panel = new ChatPanel(
      {
        connection: this.connection,
        extensionUri: this.extensionUri,
        hint: (id, status) => this.sessions.hint(id, status),
        fork: (id, at) => this.fork(id, at),
      },
      sessionId,
      this.title(sessionId),
      () => this.panels.delete(sessionId),
    );
    this.panels.set(sessionId, panel);
  }

  async newSession(): Promise<void> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    let workspace: string | undefined;
    if (folders.length === 1) workspace = folders[0]!.uri.fsPath;
    else if (folders.length > 1) workspace = (await vscode.window.showWorkspaceFolderPick({ placeHolder: 'Workspace of the new session' }))?.uri.fsPath;
    else workspace = (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use as workspace' }))?.[0]?.fsPath;
    if (!workspace) return;
    const title = await vscode.window.showInputBox({ prompt: 'Title of the new session (optional)', placeHolder: 'e.g. fix the flaky test' });
    if (title === undefined) return;
    const { sessionId } = await this.connection.request(SessionCreate, { workspace, ...(title.trim() ? { title: title.trim() } : {}) });
    await this.sessions.refresh();
    this.openChat(sessionId);
  }

  async interrupt(sessionId: string): Promise<void> {
    const { interrupted } = await this.connection.request(SessionInterrupt, { sessionId });
    vscode.window.setStatusBarMessage(interrupted ? 'agentd: interrupted' : 'agentd: nothing was running', 3000);
    await this.sessions.refresh();
  }

  async archive(sessionId: string): Promise<void> {
    const ok = await vscode.window.showWarningMessage(`Archive "${this.title(sessionId)}"? It becomes read-only; its log stays readable.`, { modal: true }, 'Archive');
    if (ok !== 'Archive') return;
    await this.connection.request(SessionArchive, { sessionId });
    await this.sessions.refresh();
  }

  async rename(sessionId: string): Promise<void> {
    const title = await vscode.window.showInputBox({
      title: 'agentd: rename session',
      prompt: 'The new title of the session',
      value: this.title(sessionId),
      validateInput: (value) => (value.trim() ? undefined : 'A title cannot be empty'),
    });
    if (!title?.trim()) return;
    await this.connection.request(SessionRename, { sessionId, title: title.trim() });
    await this.sessions.refresh();
  }

  /** Deletes the session (and its sub-agents) for good, once the user confirms; their chats close. */
  async remove(sessionId: string): Promise<void> {
    const ok = await vscode.window.showWarningMessage(
      `Delete "${this.title(sessionId)}" for good? Its log, its sub-agents and, for a fork, its workspace copy are removed. This cannot be undone.`,
      { modal: true },
      'Delete',
    );
    if (ok !== 'Delete') return;
    const { deleted } = await this.connection.request(SessionDelete, { sessionId });
    for (const id of deleted) this.panels.get(id)?.dispose();
    await this.sessions.refresh();
  }

  /** Takes the last turns out of the model's context; the log keeps them (nothing to confirm: nothing is lost). */
  async rollback(sessionId: string): Promise<void> {
    const answer = await vscode.window.showInputBox({
      title: 'agentd: roll back',
      prompt: "How many of the last turns to take out of the model's context? The log keeps them; files stay as they are.",
      value: '1',
      validateInput: (value) => (/^[1-9]\d{0,3}$/.test(value.trim()) ? undefined : 'A number of turns, 1 or more'),
    });
    if (!answer?.trim()) return;
    const { turnIds } = await this.connection.request(SessionRollback, { sessionId, turns: Number(answer.trim()) });
    vscode.window.setStatusBarMessage(`agentd: rolled back ${turnIds.length} turn${turnIds.length === 1 ? '' : 's'}`, 3000);
  }

  /** Forks from `at` (events [0, at) are copied), asking which event when not given. */
  async fork(sessionId: string, at?: number): Promise<void> {
    at ??= await this.pickForkPoint(sessionId);
    if (at === undefined) return;
    const { sessionId: forked } = await this.connection.request(SessionFork, { sessionId, at });
    await this.sessions.refresh();
    this.openChat(forked);
  }

  private async pickForkPoint(sessionId: string): Promise<number | undefined> {
    const events: Event[] = [];
    for (let from: number | undefined = 0; from !== undefined; ) {
      const page: { events: Event[]; next?: number } = await this.connection.request(SessionEvents, {
        sessionId,
        from,
        types: ['user.message', 'assistant.message', 'tool.result', 'turn.completed', 'turn.interrupted', 'turn.failed'],
      });
      events.push(...page.events);
      from = page.next;
    }
    const items = events.reverse().map((e) => ({ label: `#${e.seq} ${describe(e)}`, at: e.seq + 1 }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage('agentd: this session has nothing to fork from yet');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Fork after which event? The new session gets the log up to and including it.' });
    return picked?.at;
  }

  dispose(): void {
    for (const panel of [...this.panels.values()]) panel.dispose();
    for (const d of this.disposables) d.dispose();
    this.approvalsUi.dispose();
    this.sessions.dispose();
    this.status.dispose();
    void this.connection.dispose();
  }
}

/** A fork point as the quick pick shows it. */
function describe(e: Event): string {
  const oneLine = (text: string) => (text.length > 90 ? `${text.slice(0, 89)}…` : text).replace(/\s+/g, ' ');
  const known = knownEvent(e);
  switch (known?.type) {
    case 'user.message':
      return `You: ${oneLine(contentText(known.data.content))}`;
    case 'assistant.message':
      return `Agent: ${oneLine(contentText(known.data.content) || '(tool call)')}`;
    case 'tool.result':
      return `Tool result${known.data.isError ? ` (${known.data.errorKind ?? 'error'})` : ''}`;
    default:
      return e.type.replace('turn.', 'Turn ');
  }
}
