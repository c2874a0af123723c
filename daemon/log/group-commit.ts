/**
 * Group commit: one synced batch is in flight at a time; appends that arrive meanwhile
 * queue and go out together in the next one, so one fsync acknowledges many appends and
 * throughput grows with concurrency.
 */
import { LogError } from './session-log.js';

export interface BatchPut {
  type: 'put';
  key: string;
  value: string;
}

export interface CommitEntry {
  sessionId: string;
  /** Runs once the batch holding this entry is durable, in queue order. */
  onDurable(): void;
  onFail(error: LogError): void;
}

/** LevelDB's batch: puts only, all or nothing. */
export type BatchWriter = (ops: BatchPut[]) => Promise<void>;

/**
 * Writes one batch. It may refuse single entries (an error at their index) while the
 * rest commit; a throw means nothing in the batch was committed.
 */
export type EntriesWriter<E extends CommitEntry> = (batch: E[]) => Promise<ReadonlyArray<LogError | undefined> | void>;

export interface CommitStats {
  batches: number;
  entries: number;
}

export class GroupCommit<E extends CommitEntry> {
  /** Counted for benchmarks and status: entries / batches is the group commit factor. */
  readonly stats: CommitStats = { batches: 0, entries: 0 };
  private queue: E[] = [];
  private writing: Promise<void> | undefined;

  /**
   * `onSessionsFailed` runs after a failed batch, before any rejection is observed, so
   * the owner can forget in-memory heads and metadata that were never made durable.
   */
  constructor(
    private readonly write: EntriesWriter<E>,
    private readonly onSessionsFailed: (sessionIds: ReadonlySet<string>) => void,
    /** Fail entries queued behind a failed batch's sessions: needed when seqs were assigned before the write. */
    private readonly failBehind = true,
  ) {}

  enqueue(entry: E): void {
    this.queue.push(entry);
    this.writing ??= this.loop();
  }

  /** Resolves once nothing is queued or in flight. */
  async drain(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async loop(): Promise<void> {
    for (;;) {
      // Yield one macrotask first: appenders woken by the last batch (or arriving in the
      // same tick) re-enqueue in the microtasks before it, so they share the next batch
      // instead of one of them going out alone.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.queue.length === 0) break;
      const batch = this.queue;
      this.queue = [];
      let refused: ReadonlyArray<LogError | undefined> | void;
      try {
        refused = await this.write(batch);
      } catch (cause) {
        this.fail(batch, cause instanceof LogError ? cause : storageError(cause));
        continue;
      }
      this.stats.batches++;
      this.stats.entries += batch.length;
      for (const [i, entry] of batch.entries()) {
        const error = refused?.[i];
        if (error) entry.onFail(error);
        else entry.onDurable();
      }
    }
    this.writing = undefined;
  }

  private fail(batch: E[], error: LogError): void {
    const sessions = new Set(batch.map((entry) => entry.sessionId));
    if (!this.failBehind) {
      for (const entry of batch) entry.onFail(error);
      return;
    }
    // Entries queued behind the failed ones hold seqs after the lost ones; writing them
    // would leave a hole, so they fail too and the sessions restart from what is durable.
    const behind = this.queue.filter((entry) => sessions.has(entry.sessionId));
    this.queue = this.queue.filter((entry) => !sessions.has(entry.sessionId));
    this.onSessionsFailed(sessions);
    for (const entry of batch) entry.onFail(error);
    const behindError = new LogError('storage', `not written: an earlier append to the same session failed (${error.message})`, { cause: error });
    for (const entry of behind) entry.onFail(behindError);
  }
}

/** Names the OS error (EIO, ENOSPC, EFBIG...) as LevelDB reports it. */
export function storageError(cause: unknown, action: 'write' | 'read' = 'write'): LogError {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (code === 'LEVEL_DATABASE_NOT_OPEN') return new LogError('closed', `session log is closed: ${message}`, { cause });
  return new LogError('storage', `session log ${action} failed: ${message}${code ? ` [${code}]` : ''}`, { cause });
}
