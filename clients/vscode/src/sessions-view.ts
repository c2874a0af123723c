import * as vscode from 'vscode';
import type { SessionInfo } from '../../../protocol/index.js';
import { treeChildren, type SessionsState } from './core/sessions.js';

const ICONS: Record<SessionInfo['status'], [string, string?]> = {
  idle: ['circle-outline'],
  queued: ['clock', 'charts.yellow'],
  running: ['sync~spin', 'charts.blue'],
  waiting: ['question', 'charts.orange'],
  archived: ['archive', 'disabledForeground'],
};

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** The activity bar's session list: title, status icon, last activity; live through SessionsState. */
export class SessionsTree implements vscode.TreeDataProvider<SessionInfo>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<SessionInfo | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private state: SessionsState | undefined;
  private subscription: { dispose(): void } | undefined;

  /** Shows another connection's sessions (after a settings change). */
  attach(state: SessionsState): void {
    this.subscription?.dispose();
    this.state = state;
    this.subscription = state.onChange(() => this.changed.fire(undefined));
    this.changed.fire(undefined);
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  getTreeItem(s: SessionInfo): vscode.TreeItem {
    // Sub-agents sit under the session that started them.
    const hasChildren = this.state !== undefined && treeChildren(this.state.sessions, s.sessionId).length > 0;
    const item = new vscode.TreeItem(s.title || s.sessionId, hasChildren ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None);
    item.id = s.sessionId;
    item.description = `${s.status} · ${ago(s.updatedAt)}`;
    const [icon, color] = ICONS[s.status];
    item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    item.contextValue = `session.${s.status}`;
    const tooltip = new vscode.MarkdownString();
    tooltip.appendMarkdown(`**${escapeMd(s.title || 'Untitled session')}** — ${s.status}\n\n`);
    tooltip.appendMarkdown(`\`${s.sessionId}\` · ${s.headSeq} events\n\n`);
    tooltip.appendMarkdown(`Workspace: \`${s.workspace}\`\n\n`);
    tooltip.appendMarkdown(`Tokens: ${s.usage.inputTokens} in / ${s.usage.outputTokens} out`);
    if (s.forkedFrom) tooltip.appendMarkdown(`\n\nForked from \`${s.forkedFrom.sessionId}\` at event ${s.forkedFrom.at}`);
    if (s.parent) tooltip.appendMarkdown(`\n\nSub-agent of \`${s.parent.sessionId}\``);
    item.tooltip = tooltip;
    item.command = { command: 'agentd.openSession', title: 'Open Session', arguments: [s] };
    return item;
  }

  getChildren(element?: SessionInfo): SessionInfo[] {
    return this.state ? treeChildren(this.state.sessions, element?.sessionId) : [];
  }

  dispose(): void {
    this.subscription?.dispose();
    this.changed.dispose();
  }
}

function escapeMd(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
