import { SessionList, type SessionInfo } from '../../../../protocol/index.js';
import type { AgentdConnection } from './connection.js';

/** True when `path` is `folder` or inside it. */
export function within(path: string, folder: string): boolean {
  const base = folder.endsWith('/') ? folder : `${folder}/`;
  return path === folder || path.startsWith(base);
}

/**
 * The sessions of the open workspace folders (all sessions when none is open), newest
 * first. There is no global feed of new sessions, so the list is re-read on a short
 * interval and on every reconnect; a session started from the CLI appears within one
 * interval. Statuses of open chats are also updated at once through `hint`.
 */
export class SessionsState {
  private list: SessionInfo[] = [];
  private readonly listeners = new Set<(sessions: SessionInfo[]) => void>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly connection: AgentdConnection,
    private readonly folders: () => string[],
    private readonly intervalMs = 2000,
  ) {}

  get sessions(): SessionInfo[] {
    return this.list;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  onChange(listener: (sessions: SessionInfo[]) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  }

  start(): void {
    this.connection.onState((state) => {
      if (state.kind === 'connected') void this.refresh();
    });
    const tick = () => {
      this.timer = setTimeout(() => {
        if (this.connection.state.kind === 'connected') void this.refresh().finally(tick);
        else tick();
      }, this.intervalMs);
    };
    tick();
  }

  /** Re-reads the list; concurrent calls share one request. */
  refresh(): Promise<void> {
    this.refreshing ??= this.load().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** A status seen in a followed session's events, shown before the next refresh. */
  hint(sessionId: string, status: SessionInfo['status']): void {
    const found = this.list.find((s) => s.sessionId === sessionId);
    if (!found || found.status === status) return;
    this.list = this.list.map((s) => (s.sessionId === sessionId ? { ...s, status } : s));
    this.emit();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private async load(): Promise<void> {
    let sessions: SessionInfo[];
    try {
      sessions = (await this.connection.request(SessionList, { limit: 500 }, 5000)).sessions;
      this.lastError = undefined;
    } catch (error) {
      this.lastError = (error as Error).message;
      return;
    }
    sessions = ofFolders(sessions, this.folders());
    if (!changed(this.list, sessions)) return;
    this.list = sessions;
    this.emit();
  }

  private emit(): void {
    for (const listener of [...this.listeners]) listener(this.list);
  }
}

/**
 * The sessions whose workspace is in one of the folders, and their forks (a fork works
 * on a copy of the workspace in agentd's data dir, yet belongs with its origin).
 */
export function ofFolders(sessions: SessionInfo[], folders: string[]): SessionInfo[] {
  if (folders.length === 0) return sessions;
  const kept = new Set(sessions.filter((s) => folders.some((f) => within(s.workspace, f))).map((s) => s.sessionId));
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of sessions) {
      if (!kept.has(s.sessionId) && s.forkedFrom && kept.has(s.forkedFrom.sessionId)) {
        kept.add(s.sessionId);
        grew = true;
      }
    }
  }
  return sessions.filter((s) => kept.has(s.sessionId));
}

/**
 * The sessions shown under `parentId` in the tree: its sub-agents; at the top (no
 * `parentId`), every session that is no listed session's sub-agent. Order is kept.
 */
export function treeChildren(sessions: SessionInfo[], parentId?: string): SessionInfo[] {
  if (parentId !== undefined) return sessions.filter((s) => s.parent?.sessionId === parentId);
  const listed = new Set(sessions.map((s) => s.sessionId));
  return sessions.filter((s) => !s.parent || !listed.has(s.parent.sessionId));
}

function changed(a: SessionInfo[], b: SessionInfo[]): boolean {
  if (a.length !== b.length) return true;
  return a.some((s, i) => {
    const t = b[i]!;
    return s.sessionId !== t.sessionId || s.status !== t.status || s.headSeq !== t.headSeq || s.title !== t.title;
  });
}
