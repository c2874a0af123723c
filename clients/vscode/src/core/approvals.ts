import type { PermissionDecision } from '../../../../protocol/index.js';
import type { PermissionHandler, PermissionQuestion } from '../../../lib/client.js';

export interface PendingApproval {
  id: string;
  /** The session that asks, shown with the question. */
  sessionId: string;
  sessionTitle: string | null;
  tool: string;
  input: Record<string, unknown>;
  /** One line for a notification or a quick pick title. */
  summary: string;
  /** A network question: a connection of the session's sandbox waits for it. */
  network?: boolean;
}

export type ApprovalChange =
  | { kind: 'added'; approval: PendingApproval }
  | { kind: 'answered'; approval: PendingApproval; decision: PermissionDecision }
  /** The daemon cancelled the question: another client answered first, or the turn ended. */
  | { kind: 'withdrawn'; approval: PendingApproval };

/** Thrown to the daemon when a question is withdrawn before this client answered. */
export class ApprovalWithdrawn extends Error {}

interface Entry {
  approval: PendingApproval;
  resolve(decision: PermissionDecision): void;
  reject(error: Error): void;
}

/**
 * The permission questions the daemon has asked this client and nobody answered yet.
 * The UI shows them and answers through `answer`; the daemon's cancellation (first
 * answer won elsewhere) removes them, and the UI is told so it can withdraw them.
 */
export class ApprovalsState {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(change: ApprovalChange) => void>();

  /** Pass to the connection as its permission handler. */
  readonly handler: PermissionHandler = (question, withdrawn) => this.ask(question, withdrawn);

  pending(): PendingApproval[] {
    return [...this.entries.values()].map((e) => e.approval);
  }

  onChange(listener: (change: ApprovalChange) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  }

  /**
   * Questions belong to the connection that was asked: when it drops they are
   * withdrawn, and the daemon asks the new connection again those still open.
   */
  withdrawOnDisconnect(connection: { onState(listener: (state: { kind: string }) => void): { dispose(): void } }): { dispose(): void } {
    return connection.onState((state) => {
      if (state.kind !== 'connected') this.withdrawAll();
    });
  }

  private withdrawAll(): void {
    for (const [id, entry] of [...this.entries]) {
      this.entries.delete(id);
      entry.reject(new ApprovalWithdrawn('connection closed'));
      this.emit({ kind: 'withdrawn', approval: entry.approval });
    }
  }

  /** The user's answer; false when the question is no longer open. */
  answer(id: string, decision: PermissionDecision): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    entry.resolve(decision);
    this.emit({ kind: 'answered', approval: entry.approval, decision });
    return true;
  }

  /** `withdrawn` aborts when the daemon cancels the question (answered elsewhere, turn ended). */
  private ask(params: PermissionQuestion, withdrawn: AbortSignal): Promise<{ decision: PermissionDecision }> {
    const approval: PendingApproval = {
      id: params.toolUseId,
      sessionId: params.sessionId,
      sessionTitle: params.sessionTitle,
      tool: params.tool,
      input: params.input,
      summary: params.kind === 'network' ? `network access to ${String(params.input.host)}:${String(params.input.port)}` : summarize(params.tool, params.input),
      ...(params.kind === 'network' ? { network: true } : {}),
    };
    return new Promise((resolve, reject) => {
      if (withdrawn.aborted) return reject(new ApprovalWithdrawn('withdrawn'));
      this.entries.set(approval.id, { approval, resolve: (decision) => resolve({ decision }), reject });
      withdrawn.addEventListener(
        'abort',
        () => {
          if (!this.entries.delete(approval.id)) return;
          this.emit({ kind: 'withdrawn', approval });
          reject(new ApprovalWithdrawn('answered elsewhere'));
        },
        { once: true },
      );
      this.emit({ kind: 'added', approval });
    });
  }

  private emit(change: ApprovalChange): void {
    for (const listener of [...this.listeners]) listener(change);
  }
}

/** Which session asks, as the UI names it: its title, else its id. */
export function sessionName(approval: Pick<PendingApproval, 'sessionId' | 'sessionTitle'>): string {
  return approval.sessionTitle ? `"${approval.sessionTitle}" (${approval.sessionId})` : approval.sessionId;
}

export function summarize(tool: string, input: Record<string, unknown>): string {
  const first = input.command ?? input.path ?? input.pattern ?? Object.values(input)[0];
  const text = (typeof first === 'string' ? first : JSON.stringify(first ?? '')).replace(/\s+/g, ' ');
  return `${tool}: ${text.length > 120 ? `${text.slice(0, 119)}…` : text}`;
}
