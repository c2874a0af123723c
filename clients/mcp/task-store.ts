import type { CreateTaskOptions, TaskStore } from '@modelcontextprotocol/sdk/experimental/tasks/interfaces.js';
import type { Result, Task } from '@modelcontextprotocol/sdk/types.js';
import { AgentdError, SessionEvents, SessionInterrupt } from '../../protocol/index.js';
import type { DaemonLink } from '../lib/index.js';
import { turnIdsOf, TurnTask, type TurnIds } from './turn-task.js';

/** Ended tasks kept in memory; older ones are read from the log again when asked for. */
const ENDED_KEPT = 256;

/** The turn a task is made for, handed to `createTask` as its context by the prompt tool. */
export interface TurnTaskContext {
  turn: TurnTask;
  /** Left out of `tasks/list`: a call the host made without a task, which the SDK runs as one. */
  hidden: boolean;
}

/**
 * The SDK's TaskStore over the daemon's log: a task is a turn (its id names the turn),
 * its status and result are read from the session's events, never kept only here. A
 * task id this process has not seen (the host or this server restarted) is looked up
 * in the log and followed again. Results live as long as the log: ttl is null.
 */
export class TurnTaskStore implements TaskStore {
  private readonly tasks = new Map<string, { turn: TurnTask; hidden: boolean }>();

  constructor(private readonly link: DaemonLink) {}

  async createTask(taskParams: CreateTaskOptions): Promise<Task> {
    const context = taskParams.context as TurnTaskContext | undefined;
    if (!context || !(context.turn instanceof TurnTask)) throw new Error('agentd makes tasks only for agentd_prompt turns');
    this.keep(context.turn, context.hidden);
    return context.turn.status;
  }

  async getTask(taskId: string): Promise<Task | null> {
    const turn = await this.find(taskId);
    return turn ? turn.status : null;
  }

  async storeTaskResult(): Promise<void> {
    throw new Error("a task's result is its turn's end in the session log; nothing else stores one");
  }

  async getTaskResult(taskId: string): Promise<Result> {
    const turn = await this.find(taskId);
    if (!turn) throw new Error(`no task ${taskId}`);
    await turn.ended;
    // A plain call's task is read once, by the SDK answering that call.
    if (this.tasks.get(taskId)?.hidden) this.tasks.delete(taskId);
    return turn.result!;
  }

  /** Only `cancelled` is the host's to set (`tasks/cancel`): it interrupts the turn (once it runs). Other statuses come from the log. */
  async updateTaskStatus(taskId: string, status: Task['status']): Promise<void> {
    if (status !== 'cancelled') return;
    const turn = await this.find(taskId);
    if (!turn) throw new Error(`no task ${taskId}`);
    turn.cancel(() => this.link.request(SessionInterrupt, { sessionId: turn.ids.sessionId }));
  }

  async listTasks(): Promise<{ tasks: Task[] }> {
    return { tasks: [...this.tasks.values()].filter((t) => !t.hidden).map((t) => t.turn.status) };
  }

  /** The running task (one the host asked for) of the session's turn, if any. */
  runningTaskOf(sessionId: string): string | undefined {
    for (const { turn, hidden } of this.tasks.values()) {
      if (!hidden && turn.ids.sessionId === sessionId && turn.result === undefined) return turn.taskId;
    }
    return undefined;
  }

  close(): void {
    for (const { turn } of this.tasks.values()) turn.dispose();
    this.tasks.clear();
  }

  private async find(taskId: string): Promise<TurnTask | undefined> {
    const known = this.tasks.get(taskId)?.turn;
    if (known) return known;
    const ids = turnIdsOf(taskId);
    if (!ids || !(await this.promptExists(ids))) return undefined;
    const turn = this.tasks.get(taskId)?.turn ?? new TurnTask(this.link, ids);
    this.keep(turn, false);
    await turn.caughtUp;
    return turn;
  }

  /** Holds a task while it runs and for a while after; the oldest ended ones go (the log keeps them). */
  private keep(turn: TurnTask, hidden: boolean): void {
    this.tasks.set(turn.taskId, { turn, hidden });
    void turn.ended.then(() => {
      const ended = [...this.tasks.entries()].filter(([, t]) => t.turn.result !== undefined);
      for (const [id] of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT))) this.tasks.delete(id);
    });
  }

  /** The id names a prompt in the log: the event at its seq is that turn's user message. */
  private async promptExists(ids: TurnIds): Promise<boolean> {
    try {
      const { events } = await this.link.request(SessionEvents, { sessionId: ids.sessionId, from: ids.seq, limit: 1 });
      const event = events[0];
      return event?.type === 'user.message' && (event.data as { turnId?: unknown }).turnId === ids.turnId;
    } catch (error) {
      if (error instanceof AgentdError) return false;
      throw error;
    }
  }
}
