/**
 * A session's network as the egress proxy sees it: its policy as it stands (the one it was
 * created with, plus hosts that "allow always" answers added), its decisions recorded in
 * its log, and questions about undecided hosts put to its controllers through the same
 * first-answer-wins path as tool permissions.
 */
import { randomBytes } from 'node:crypto';
import { exactPattern, type NetworkPolicy, type PermissionDecision, type PermissionQuestion } from '../protocol/index.js';
import { appendEvents } from './events.js';
import type { SessionLog } from './log/session-log.js';
import type { Logger } from './logger.js';
import type { EgressSession, NetworkDecision } from './proxy/egress.js';
import type { SessionRecord } from './sessions.js';

/** The policy a session without one of its own gets: deny, with the daemon's presets. */
export function defaultNetworkPolicy(presets: NonNullable<NetworkPolicy['presets']>): NetworkPolicy {
  return { default: 'deny', ...(presets.length > 0 ? { presets } : {}) };
}

/** What the session's record keeps of its network: the policy, and the hosts answers added. */
export function networkOf(record: SessionRecord, fallback: NetworkPolicy): { policy: NetworkPolicy; added: string[] } {
  return { policy: record.config.network ?? fallback, added: record.networkAdded ?? [] };
}

export interface NetworkDeps {
  /** What the session's events are written with: its harness's writer, fenced by its lease in a cluster. */
  writer(sessionId: string): SessionLog;
  logger: Logger;
  find(sessionId: string): Promise<SessionRecord | undefined>;
  ask(question: PermissionQuestion, signal: AbortSignal): Promise<{ decision: PermissionDecision; by: string }>;
  /** The turn and tool call running in the session now, if any: the call that made the connection. */
  running(sessionId: string): { turnId: string; toolUseId?: string } | undefined;
  /** For sessions created before network policies existed. */
  fallback: NetworkPolicy;
  /** Runs a task on the session's queue: an answer's read-modify-write of the added hosts is one step. */
  serialize<T>(sessionId: string, task: () => Promise<T>): Promise<T>;
}

export class SessionNetworks {
  /** Questions open per session and host:port: concurrent connections to one host share one question. */
  private readonly asking = new Map<string, Promise<{ decision: 'allow' | 'deny'; reason: string; answered?: boolean }>>();

  constructor(private readonly deps: NetworkDeps) {}

  for(sessionId: string): EgressSession {
    return {
      policy: async () => {
        const record = await this.deps.find(sessionId);
        if (!record) throw new Error(`unknown session ${sessionId}`);
        return networkOf(record, this.deps.fallback);
      },
      record: (decision) => this.record(sessionId, decision),
      ask: (host, port, signal) => {
        const key = `${sessionId} ${host}:${port}`;
        let pending = this.asking.get(key);
        if (!pending) {
          pending = this.ask(sessionId, host, port, signal).finally(() => this.asking.delete(key));
          this.asking.set(key, pending);
        }
        return pending;
      },
    };
  }

  private async record(sessionId: string, decision: NetworkDecision): Promise<void> {
    const toolUseId = this.deps.running(sessionId)?.toolUseId;
    await appendEvents(this.deps.writer(sessionId), sessionId, [{ type: 'network.decided', data: { ...decision, ...(toolUseId ? { toolUseId } : {}) } }]);
  }

  private async ask(sessionId: string, host: string, port: number, signal: AbortSignal): Promise<{ decision: 'allow' | 'deny'; reason: string; answered?: boolean }> {
    const record = await this.deps.find(sessionId);
    const running = this.deps.running(sessionId);
    const questionId = `net_${randomBytes(8).toString('hex')}`;
    const input = { host, port, ...(running?.toolUseId ? { toolUseId: running.toolUseId } : {}) };
    const turn = running ? { turnId: running.turnId } : {};
    const log = this.deps.writer(sessionId);
    // A running turn waits on the question, as it does on a tool's: the session says so.
    await appendEvents(log, sessionId, [{ type: 'permission.requested', data: { ...turn, toolUseId: questionId, tool: 'network', input, kind: 'network' } }], running ? { status: 'waiting' } : undefined);
    // Back to running once answered, unless the turn ended meanwhile (interrupted while it waited).
    const stillRunning = () => (running && this.deps.running(sessionId)?.turnId === running.turnId ? { status: 'running' } : undefined);
    const question: PermissionQuestion = { sessionId, sessionTitle: record?.title ?? null, toolUseId: questionId, tool: 'network', input, kind: 'network' };
    let answer: { decision: PermissionDecision; by: string };
    try {
      answer = await this.deps.ask(question, signal);
    } catch {
      // The connection went before anyone answered: nothing was decided.
      await appendEvents(log, sessionId, [{ type: 'permission.resolved', data: { ...turn, toolUseId: questionId, decision: 'deny', by: 'withdrawn: the connection closed' } }], stillRunning());
      return { decision: 'deny', reason: 'the question was withdrawn' };
    }
    await this.deps.serialize(sessionId, async () => {
      // Read again: another answer may have added a host while this one waited.
      const now = answer.decision === 'allow_always' ? await this.deps.find(sessionId) : undefined;
      const added = now ? { networkAdded: [...new Set([...(now.networkAdded ?? []), exactPattern(host, port)])] } : undefined;
      const patch = { ...stillRunning(), ...added };
      await appendEvents(log, sessionId, [{ type: 'permission.resolved', data: { ...turn, toolUseId: questionId, decision: answer.decision, by: answer.by } }], Object.keys(patch).length > 0 ? patch : undefined);
    });
    this.deps.logger.log('info', 'network question answered', { sessionId, host, port, decision: answer.decision });
    return { decision: answer.decision === 'deny' ? 'deny' : 'allow', reason: `answered ${answer.decision} by ${answer.by}`, answered: true };
  }
}
