import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { AgentdError, ErrorCode, knownEvent, PermissionRequest, type EventType, type PermissionDecision, type PermissionQuestion } from '../protocol/index.js';
import type { SessionLog } from './log/session-log.js';
import type { Logger } from './logger.js';
import type { Peer } from './rpc/peer.js';

interface OpenQuestion {
  question: PermissionQuestion;
  answer: (result: { decision: PermissionDecision; by: string }) => void;
  asked: Map<Peer, CancellationTokenSource>;
  /** Asked by the session's harness on another daemon; answers go back to it. */
  remote: boolean;
}

/** How questions reach the clients of other daemons sharing the sessions (see daemon/cluster). */
export interface PermissionRelay {
  /** Our harness asks: tell the other daemons. */
  asked(question: PermissionQuestion): void;
  /** Our question was answered or withdrawn. */
  closed(question: PermissionQuestion): void;
  /** One of our clients answered another daemon's question. */
  answered(question: PermissionQuestion, decision: PermissionDecision, by: string): void;
}

/**
 * Routes permission questions to clients: every connected controller of the session
 * (protocol/methods/permission.ts says who is one) that declared `permissionRequests`
 * is asked, the first answer wins and the other requests are cancelled. A connection
 * that becomes a controller later is asked the session's questions still open, so a
 * question outlives the clients (and, through the log, the daemon).
 */
export class PermissionBroker {
  private readonly open = new Map<string, OpenQuestion>();

  relay: PermissionRelay | undefined;

  constructor(
    private readonly peers: () => Iterable<Peer>,
    private readonly logger: Logger,
  ) {}

  ask(question: PermissionQuestion, signal: AbortSignal): Promise<{ decision: PermissionDecision; by: string }> {
    // Asked here now (we took the session over): a copy asked for another daemon goes.
    if (this.open.get(question.toolUseId)?.remote) this.close(question.toolUseId);
    return new Promise((resolve, reject) => {
      const entry: OpenQuestion = {
        question,
        asked: new Map(),
        remote: false,
        answer: (result) => {
          this.close(question.toolUseId);
          resolve(result);
        },
      };
      this.open.set(question.toolUseId, entry);
      this.relay?.asked(question);
      signal.addEventListener(
        'abort',
        () => {
          this.close(question.toolUseId);
          reject(new Error('permission question withdrawn'));
        },
        { once: true },
      );
      for (const peer of this.peers()) this.askPeer(entry, peer);
    });
  }

  /** Another daemon's harness asks: our controllers of the session may answer too. */
  askRemote(question: PermissionQuestion): void {
    if (this.open.has(question.toolUseId)) return;
    const entry: OpenQuestion = {
      question,
      asked: new Map(),
      remote: true,
      answer: ({ decision, by }) => {
        this.close(question.toolUseId);
        this.relay?.answered(question, decision, by);
      },
    };
    this.open.set(question.toolUseId, entry);
    for (const peer of this.peers()) this.askPeer(entry, peer);
  }

  /** A client of another daemon answered one of our questions. */
  answerFromRemote(toolUseId: string, decision: PermissionDecision, by: string): void {
    const entry = this.open.get(toolUseId);
    if (!entry || entry.remote) return;
    this.logger.log('info', 'permission answered on another daemon', { sessionId: entry.question.sessionId, toolUseId, decision, by });
    entry.answer({ decision, by });
  }

  /** Another daemon's question was answered or withdrawn: stop asking ours. */
  closeRemote(toolUseId: string): void {
    if (this.open.get(toolUseId)?.remote) this.close(toolUseId);
  }

  /** Whether a question of this session is open here. */
  hasOpen(sessionId: string): boolean {
    return [...this.open.values()].some((e) => e.question.sessionId === sessionId);
  }

  /** The connection became a controller of the session: ask it the session's open questions, and its sub-agents'. */
  offer(peer: Peer, sessionId: string): void {
    for (const entry of this.open.values()) {
      if (entry.question.sessionId === sessionId || entry.question.parentSessionId === sessionId) this.askPeer(entry, peer);
    }
  }

  /** `permission/answer`: a controller of the session answers one of its open questions by id. */
  answer(peer: Peer, sessionId: string, toolUseId: string, decision: PermissionDecision): void {
    const entry = this.open.get(toolUseId);
    // A sub-agent's question may be answered by a controller of its parent session too.
    if (!peer.isController(sessionId) && !(entry?.question.sessionId === sessionId && controls(peer, entry.question))) {
      throw new AgentdError(
        ErrorCode.NotController,
        `this connection is not a controller of ${sessionId} and may not answer its questions; create, prompt or attach to it as controller first`,
        { sessionId, toolUseId },
      );
    }
    if (!entry || entry.question.sessionId !== sessionId) {
      throw new AgentdError(ErrorCode.QuestionNotOpen, `no open permission question ${toolUseId} in ${sessionId}: answered already, withdrawn, or never asked`, { sessionId, toolUseId });
    }
    this.logger.log('info', 'permission answered', { sessionId, toolUseId, decision, conn: peer.id, via: 'permission/answer' });
    entry.answer({ decision, by: who(peer) });
  }

  get pending(): number {
    return this.open.size;
  }

  private askPeer(entry: OpenQuestion, peer: Peer): void {
    const { question } = entry;
    if (peer.closed || peer.state !== 'ready' || !peer.capabilities.permissionRequests) return;
    if (!controls(peer, question) || entry.asked.has(peer)) return;
    const cancel = new CancellationTokenSource();
    entry.asked.set(peer, cancel);
    peer.request(PermissionRequest, question, cancel.token).then(
      ({ decision }) => {
        if (this.open.get(question.toolUseId) !== entry) return; // answered elsewhere first
        if (!controls(peer, question)) return;
        this.logger.log('info', 'permission answered', { sessionId: question.sessionId, toolUseId: question.toolUseId, decision, conn: peer.id });
        entry.answer({ decision, by: who(peer) });
      },
      () => entry.asked.delete(peer), // cancelled, refused or gone: others may still answer
    );
  }

  private close(toolUseId: string): void {
    const entry = this.open.get(toolUseId);
    if (!entry) return;
    this.open.delete(toolUseId);
    for (const cancel of entry.asked.values()) cancel.cancel();
    if (!entry.remote) this.relay?.closed(entry.question);
  }
}

/** Who may answer: a controller of the asking session, or of the session that started it (a sub-agent's). */
function controls(peer: Peer, question: PermissionQuestion): boolean {
  return peer.isController(question.sessionId) || (question.parentSessionId !== undefined && peer.isController(question.parentSessionId));
}

/** How an answer names who gave it, in permission.resolved. */
function who(peer: Peer): string {
  return `${peer.clientName || 'client'}#${peer.id}`;
}

/** How far back a question is looked for: a waiting session's question is near its head. */
const QUESTION_SCAN = 10_000;
/**
 * A question is asked by permission.requested and closed by its answer or its call's result;
 * a network question also by a harness waking the session: the connection that waited for it
 * went with the daemon that stopped, and the sandbox's next attempt asks anew.
 */
const QUESTION_EVENTS: EventType[] = ['permission.requested', 'permission.resolved', 'tool.result', 'harness.woke'];

/** Questions of a session still waiting for an answer, as its log records them. */
export async function openQuestions(log: SessionLog, sessionId: string): Promise<PermissionQuestion[]> {
  const [head, meta] = await Promise.all([log.head(sessionId), log.getMeta(sessionId)]);
  const sessionTitle = typeof meta?.['title'] === 'string' ? meta['title'] : null;
  const open = new Map<string, PermissionQuestion>();
  for (let from: number | undefined = Math.max(0, head - QUESTION_SCAN); from !== undefined; ) {
    const page = await log.read(sessionId, { from, types: QUESTION_EVENTS });
    for (const stored of page.events) {
      const event = knownEvent(stored);
      if (event?.type === 'permission.requested') {
        const { toolUseId, tool, input, kind } = event.data;
        open.set(toolUseId, { sessionId, sessionTitle, toolUseId, tool, input, ...(kind ? { kind } : {}) });
      } else if (event?.type === 'harness.woke') {
        for (const [id, question] of open) if (question.kind === 'network') open.delete(id);
      } else if (event?.type === 'permission.resolved' || event?.type === 'tool.result') {
        open.delete(event.data.toolUseId);
      }
    }
    from = page.next;
  }
  return [...open.values()];
}
