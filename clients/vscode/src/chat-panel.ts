import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { SessionInterrupt, SessionSteer } from '../../../protocol/index.js';
import { ChatModel } from '../../lib/chat-view.js';
import type { SessionFollower } from '../../lib/index.js';
import type { AgentdConnection, ConnectionState } from './core/connection.js';
import { chatPageHtml, renderConversation } from './core/render.js';

/** What the webview may send; anything else is ignored. */
type FromWebview = { type: 'ready' } | { type: 'prompt'; text: string } | { type: 'interrupt' } | { type: 'fork'; at: number };

export interface ChatHost {
  connection: AgentdConnection;
  extensionUri: vscode.Uri;
  /** A status seen in the session's events, for the sessions view. */
  hint(sessionId: string, status: 'idle' | 'running' | 'waiting' | 'archived'): void;
  fork(sessionId: string, at?: number): Promise<void>;
}

function connectionText(state: ConnectionState): string {
  switch (state.kind) {
    case 'connected':
      return '';
    case 'idle':
    case 'connecting':
      return state.kind === 'connecting' && state.attempt > 1 ? 'reconnecting to agentd…' : 'connecting to agentd…';
    case 'failed':
      return `not connected: ${state.message}`;
    case 'daemonStopped':
      return state.message;
    case 'closed':
      return 'disconnected';
  }
}

/**
 * One session's conversation in a webview: its history from the log, then live, with
 * streaming text. Talks to the webview by messages only; the page has a strict CSP
 * and loads nothing remote.
 */
export class ChatPanel implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private readonly model: ChatModel;
  private readonly follow: SessionFollower;
  private readonly disposables: vscode.Disposable[] = [];
  private renderTimer: NodeJS.Timeout | undefined;
  private ready = false;
  private disposed = false;

  constructor(
    private readonly host: ChatHost,
    readonly sessionId: string,
    title: string,
    onDispose: () => void,
  ) {
    const media = vscode.Uri.joinPath(host.extensionUri, 'media');
    this.panel = vscode.window.createWebviewPanel('agentd.chat', title, vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [media],
    });
    this.panel.iconPath = vscode.Uri.joinPath(media, 'agentd.svg');
    const webview = this.panel.webview;
    webview.html = chatPageHtml({
      cspSource: webview.cspSource,
      nonce: randomBytes(16).toString('base64'),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css')).toString(),
      title,
    });
    this.model = new ChatModel(sessionId);
    // From 0: the whole history first, then live; resubscribed from the last seq on reconnect.
    this.follow = host.connection.follow(sessionId, 0, {
      onEvents: (events) => {
        this.model.applyEvents(events);
        this.scheduleRender();
      },
      onDelta: (delta) => {
        this.model.applyDelta(delta);
        this.scheduleRender();
      },
    });
    this.disposables.push(
      webview.onDidReceiveMessage((message: FromWebview) => void this.receive(message)),
      // Hidden webviews are torn down; the page asks for a render again when shown.
      this.panel.onDidChangeViewState(() => this.panel.visible || (this.ready = false)),
      this.panel.onDidDispose(() => {
        this.dispose();
        onDispose();
      }),
    );
    const state = host.connection.onState(() => this.scheduleRender());
    this.disposables.push({ dispose: () => state.dispose() });
  }

  reveal(): void {
    this.panel.reveal();
  }

  private async receive(message: FromWebview): Promise<void> {
    try {
      switch (message?.type) {
        case 'ready':
          this.ready = true;
          this.render();
          break;
        case 'prompt':
          // While a turn runs, what the user types joins it (its next model call reads it); otherwise it starts a turn.
          if (typeof message.text === 'string' && message.text.trim()) {
            await this.host.connection.request(SessionSteer, { sessionId: this.sessionId, content: message.text });
          }
          break;
        case 'interrupt': {
          const { interrupted } = await this.host.connection.request(SessionInterrupt, { sessionId: this.sessionId });
          if (!interrupted) vscode.window.setStatusBarMessage('agentd: nothing was running', 3000);
          break;
        }
        case 'fork':
          await this.host.fork(this.sessionId, Number.isInteger(message.at) && message.at > 0 ? message.at : undefined);
          break;
      }
    } catch (error) {
      void vscode.window.showErrorMessage(`agentd: ${(error as Error).message}`);
      // A prompt that did not reach the daemon goes back into the prompt box.
      void this.panel.webview.postMessage({ type: 'error', text: (error as Error).message, ...(message?.type === 'prompt' ? { restore: message.text } : {}) });
    }
  }

  private scheduleRender(): void {
    if (this.renderTimer || this.disposed) return;
    // Deltas come many per second; one render per frame is plenty.
    this.renderTimer = setTimeout(() => {
      this.renderTimer = undefined;
      this.render();
    }, 40);
  }

  private render(): void {
    const view = this.model.view();
    this.host.hint(this.sessionId, view.status);
    if (view.title) this.panel.title = view.title;
    if (!this.ready || this.disposed) return;
    void this.panel.webview.postMessage({
      type: 'render',
      html: renderConversation(view),
      title: view.title || this.sessionId,
      status: view.status,
      connection: connectionText(this.host.connection.state),
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.renderTimer);
    this.follow.dispose();
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }
}
