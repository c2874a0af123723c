import * as vscode from 'vscode';
import type { PermissionDecision } from '../../../protocol/index.js';
import { sessionName, type ApprovalsState, type PendingApproval } from './core/approvals.js';

interface Choice extends vscode.QuickPickItem {
  decision: PermissionDecision;
}

const CHOICES: Choice[] = [
  { label: '$(check) Allow', description: 'this call only', decision: 'allow' },
  { label: '$(check-all) Always allow', description: 'this tool, for the rest of the session', decision: 'allow_always' },
  { label: '$(circle-slash) Deny', description: 'the agent is told it was denied', decision: 'deny' },
];

/** For a network question (a connection the sandbox makes while the request waits). */
const NETWORK_CHOICES: Choice[] = [
  { label: '$(check) Allow', description: 'this connection only', decision: 'allow' },
  { label: '$(check-all) Always allow', description: 'this host and port, for the rest of the session', decision: 'allow_always' },
  { label: '$(circle-slash) Deny', description: 'the connection is refused', decision: 'deny' },
];

/**
 * Permission questions as a quick pick (allow / always allow / deny) that stays open
 * when focus moves, one question at a time. A question answered elsewhere first is
 * withdrawn by the daemon, and its quick pick closes. Dismissed questions stay pending
 * in the status bar until answered.
 */
export class ApprovalsUi implements vscode.Disposable {
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  private current: { approval: PendingApproval; pick: vscode.QuickPick<Choice> } | undefined;
  private readonly dismissed = new Set<string>();
  private readonly subscription: { dispose(): void };

  constructor(private readonly state: ApprovalsState) {
    this.status.command = 'agentd.showApprovals';
    this.subscription = state.onChange((change) => {
      if (change.kind === 'withdrawn') {
        if (this.current?.approval.id === change.approval.id) this.close();
        vscode.window.setStatusBarMessage(`agentd: "${change.approval.summary}" was answered elsewhere`, 4000);
      }
      if (change.kind === 'answered' && this.current?.approval.id === change.approval.id) this.close();
      this.dismissed.delete(change.approval.id);
      this.update();
    });
  }

  /** Shows the first pending question, including ones the user dismissed. */
  showNext(includeDismissed = true): void {
    if (this.current) {
      this.current.pick.show();
      return;
    }
    const next = this.state.pending().find((a) => includeDismissed || !this.dismissed.has(a.id));
    if (!next) return;
    this.dismissed.delete(next.id);
    const pick = vscode.window.createQuickPick<Choice>();
    pick.title = `agentd session ${sessionName(next)} wants ${next.network ? '' : 'to run '}${next.summary}`;
    pick.placeholder = `Session ${sessionName(next)}: allow this ${next.network ? 'connection' : 'tool call'}?`;
    pick.items = next.network ? NETWORK_CHOICES : CHOICES;
    pick.ignoreFocusOut = true;
    pick.onDidAccept(() => {
      const choice = pick.selectedItems[0];
      if (!choice) return;
      this.state.answer(next.id, choice.decision);
    });
    pick.onDidHide(() => {
      if (this.current?.pick !== pick) return;
      // Escape: keep the question pending (status bar) and move on to the next one.
      this.dismissed.add(next.id);
      this.current = undefined;
      pick.dispose();
      this.update();
    });
    this.current = { approval: next, pick };
    pick.show();
  }

  private close(): void {
    const current = this.current;
    this.current = undefined;
    current?.pick.hide();
    current?.pick.dispose();
  }

  private update(): void {
    const pending = this.state.pending();
    if (pending.length === 0) {
      this.status.hide();
    } else {
      this.status.text = `$(shield) agentd: ${pending.length} approval${pending.length === 1 ? '' : 's'}`;
      this.status.tooltip = pending.map((a) => `${sessionName(a)}: ${a.summary}`).join('\n');
      this.status.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
      this.status.show();
    }
    if (!this.current) this.showNext(false);
  }

  dispose(): void {
    this.subscription.dispose();
    this.close();
    this.status.dispose();
  }
}
