/**
 * A runner's view of its session's log: the fold of everything in it (resumed from a
 * checkpoint), and writes in order, each redacted and applied to the fold as it lands.
 */
import type { NewKnownEvent, PromptContent } from '../../protocol/index.js';
import { appendEvents } from '../events.js';
import { LogError, type SessionLog, type WriteOptions } from '../log/session-log.js';
import { SessionFold, type SessionState } from './fold.js';
import type { HarnessLogger, HarnessRedactor } from './deps.js';

const PAGE = 5000;
/**
 * A checkpoint of the fold is kept once this many events were folded since the last one
 * (and at every compaction): a woken runner reads at most about this many events.
 */
export const CHECKPOINT_EVERY = 500;

/** The event with secrets replaced in its data (never in its type). */
function redactData<E extends NewKnownEvent>(event: E, redactor: HarnessRedactor): E {
  return { ...event, data: redactor.value(event.data) };
}

/**
 * A prompt's user message whose seq is assigned but which may not be durable yet: its
 * turn can start on it (the model call leaves during the fsync), holding every side
 * effect until `durable` resolves, and recording nothing if it rejects.
 */
export interface SpeculativeInput {
  seq: number;
  event: { type: 'user.message'; data: { turnId: string; content: PromptContent } };
  /** Resolves once the message is durable; rejects when its append failed (nothing of it was written). */
  durable: Promise<void>;
}

/** Deltas held back, and whether their call went unrecorded (they are then dropped). */
interface HeldDeltas {
  sends: Array<() => void>;
  dropped: boolean;
}

export interface WriterDeps {
  log: SessionLog;
  logger: HarnessLogger;
  /** Replaces vault values in everything the runner records (a second line of defence). */
  redactor(): Promise<HarnessRedactor>;
}

export class SessionWriter {
  private fold = new SessionFold();
  /** Resumes the fold from the session's checkpoint, once, before the first read. */
  private restored: Promise<void> | undefined;
  private catchingUp: Promise<void> = Promise.resolve();
  /** The seq of the newest checkpoint kept or being kept (0: none). */
  private checkpointSeq = 0;
  private checkpointing: Promise<void> | undefined;
  /** Deltas that arrived before the model.requested of their call was durable (see appendUnawaited). */
  private heldDeltas: HeldDeltas | undefined;
  /** A user message folded before it was durable (see assume), until it is. */
  private assumed: Promise<void> | undefined;
  /** A write started but not awaited (model.requested): the next append waits for it, so the log keeps the loop's order. */
  private unawaited: Promise<void> | undefined;
  /** Writes in order, one at a time: sub-agent calls finish side by side, and the fold takes events in order. */
  private appending: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: WriterDeps,
    private readonly sessionId: string,
  ) {}

  get state(): SessionState {
    return this.fold.state;
  }

  /** Resolves once the writes started so far (one not waited for too) have landed or failed. */
  async landed(): Promise<void> {
    await this.appending;
  }

  /**
   * Reads the checkpoint and the log after it ahead of the first catch-up: a prompt's
   * turn then starts without reading (see assume), while its message is being made durable.
   */
  prepare(): void {
    if (this.restored) return;
    this.restored = this.restore();
    this.catchUp().catch(() => undefined); // the runner's own catch-up reports it
  }

  /** Applies events appended since the fold's head (ours and other writers'), one catch-up at a time. */
  catchUp(): Promise<void> {
    const caughtUp = this.catchingUp.then(() => this.catchUpNow());
    this.catchingUp = caughtUp.catch(() => undefined);
    return caughtUp;
  }

  private async catchUpNow(): Promise<void> {
    // The log is read only up to what is durable: an assumed message is folded already.
    if (this.assumed) await this.assumed.catch(() => undefined);
    await (this.restored ??= this.restore());
    for (;;) {
      const page = await this.deps.log.read(this.sessionId, { from: this.fold.state.headSeq, limit: PAGE });
      for (const event of page.events) this.fold.apply(event);
      if (page.next === undefined) break;
    }
    this.checkpointIfDue();
  }

  /**
   * Starts from the session's checkpoint when there is one this fold can read; otherwise
   * (none, another format, unreadable) from seq 0, which folds to the same state.
   */
  private async restore(): Promise<void> {
    const checkpoint = await this.deps.log.getCheckpoint(this.sessionId).catch((error: unknown) => {
      this.deps.logger.log('warn', 'reading the session checkpoint failed; folding the whole log', { sessionId: this.sessionId, error: String(error) });
      return undefined;
    });
    const fold = checkpoint && SessionFold.fromCheckpoint(checkpoint);
    if (!fold) return;
    this.fold = fold;
    this.checkpointSeq = checkpoint.seq;
  }

  /**
   * Keeps a checkpoint of the fold when enough was folded since the last one, or the
   * context was just compacted. Not awaited, one at a time: the turn never waits for it,
   * and a checkpoint lost in a crash only makes the next wake read further back.
   */
  private checkpointIfDue(compacted = false): void {
    const { headSeq } = this.fold.state;
    // Never a checkpoint of a fold holding a message that may yet not land.
    if (this.assumed || this.checkpointing || headSeq <= this.checkpointSeq || (!compacted && headSeq - this.checkpointSeq < CHECKPOINT_EVERY)) return;
    const checkpoint = this.fold.checkpoint();
    this.checkpointSeq = checkpoint.seq;
    this.checkpointing = this.deps.log
      .putCheckpoint(this.sessionId, checkpoint)
      .then(
        () => undefined,
        (error: unknown) => this.deps.logger.log('warn', 'keeping a session checkpoint failed', { sessionId: this.sessionId, error: String(error) }),
      )
      .finally(() => (this.checkpointing = undefined));
  }

  /** Appends through the typed writer, redacted first: what is checked against the schema is what is written. */
  append(events: NewKnownEvent[], metaPatch?: Record<string, unknown>, options?: WriteOptions): Promise<void> {
    // A write started and not awaited (appendUnawaited) lands first; its failure surfaces here.
    const before = this.unawaited;
    this.unawaited = undefined;
    const appended = this.appending.then(async () => {
      await before;
      await this.appendNow(events, metaPatch, options);
    });
    this.appending = appended.catch(() => undefined);
    return appended;
  }

  private async appendNow(events: NewKnownEvent[], metaPatch?: Record<string, unknown>, options?: WriteOptions): Promise<void> {
    const redactor = await this.deps.redactor();
    const redacted = redactor.empty ? events : events.map((e) => redactData(e, redactor));
    const seqs = await this.write(redacted, metaPatch, options);
    // Our events right after what the fold has: apply them without reading them back.
    // Otherwise another writer got in between, and the log is read in order.
    if (seqs[0] !== this.fold.state.headSeq) return this.catchUp();
    const ts = Date.now();
    redacted.forEach((e, i) => this.fold.apply({ seq: seqs[i]!, ts, type: e.type, data: e.data }));
    this.checkpointIfDue(redacted.some((e) => e.type === 'context.compacted'));
  }

  /**
   * Folds a prompt's user message before it is durable, when it is the next event the
   * fold expects; false otherwise (the runner then reads it from the log as usual). If
   * its append fails the fold is dropped (it is read again from the log), `lost` runs,
   * and every write of ours queued behind it fails.
   */
  assume(input: SpeculativeInput, lost: () => void): boolean {
    if (this.assumed || this.unawaited || this.fold.state.headSeq !== input.seq) return false;
    this.fold.apply({ seq: input.seq, ts: Date.now(), type: input.event.type, data: input.event.data });
    const assumed: Promise<void> = input.durable.then(
      () => {
        if (this.assumed === assumed) this.assumed = undefined;
      },
      (error: unknown) => {
        this.fold = new SessionFold();
        this.restored = undefined;
        this.checkpointSeq = 0;
        if (this.assumed === assumed) this.assumed = undefined;
        lost();
        throw error;
      },
    );
    assumed.catch(() => undefined); // surfaces in the writes that wait for it
    this.assumed = assumed;
    return true;
  }

  /**
   * Appends; while an assumed message is not yet durable, only right behind it (ifHead at
   * the fold's head): were it lost, the log's head would be back before it and this write
   * a conflict, never an event in its place. A conflict for any other reason waits for it.
   */
  private async write(events: NewKnownEvent[], metaPatch?: Record<string, unknown>, options?: WriteOptions): Promise<number[]> {
    const assumed = this.assumed;
    if (assumed && options?.ifHead === undefined) {
      try {
        return await appendEvents(this.deps.log, this.sessionId, events, metaPatch, { ...options, ifHead: this.fold.state.headSeq });
      } catch (error) {
        if (!(error instanceof LogError && error.kind === 'conflict')) throw error;
      }
    }
    await assumed;
    return appendEvents(this.deps.log, this.sessionId, events, metaPatch, options);
  }

  /**
   * Starts an append that nothing needs durable before the next step: the next append
   * (or the end of the turn) waits for it. A failure surfaces there.
   */
  appendUnawaited(events: NewKnownEvent[], metaPatch?: Record<string, unknown>): void {
    const write = this.append(events, metaPatch);
    this.unawaited = write;
    // Deltas wait for it: clients take what streams after a model.requested as that call's.
    // It lands after the user message before it: so do they, when that one was assumed.
    const held: HeldDeltas = { sends: [], dropped: false };
    this.heldDeltas = held;
    write.then(
      () =>
        // After the subscriptions' deliveries of the write (microtasks): the event goes out first.
        setImmediate(() => {
          if (this.heldDeltas === held) this.heldDeltas = undefined;
          for (const send of held.sends) send();
        }),
      () => {
        // Surfaces when awaited, not as an unhandled rejection; the deltas of an unrecorded call go, now and later.
        held.dropped = true;
        held.sends = [];
      },
    );
  }

  /** Sends a delta now, or once the model.requested of its call (written unawaited) has landed. */
  delta(send: () => void): void {
    const held = this.heldDeltas;
    if (!held) send();
    else if (!held.dropped) held.sends.push(send);
  }

  /** Waits for a write started with appendUnawaited. */
  async settleUnawaited(): Promise<void> {
    const write = this.unawaited;
    this.unawaited = undefined;
    await write;
  }
}
