import { Session } from 'node:inspector';
import { loadMallocTrim, type MallocTrim } from './malloc-trim.js';

/** Quiet time after work before the daemon gives memory back. */
export const IDLE_GC_MS = 10_000;

/** Between the collection of a quiet spell and the malloc trim: V8 frees dead buffers' memory after it. */
export const TRIM_AFTER_MS = 2_000;

/**
 * V8 keeps the heap it grew during a burst of work (many turns, a big request, a
 * misbehaving client) long after the work is done, and glibc keeps what malloc freed: a
 * long-lived daemon would sit on memory it no longer uses. Once nothing has happened for
 * `idleMs` after some work, the daemon gives both back, once per quiet spell, never while
 * busy:
 *
 * - V8: a low-memory collection (see collectAllGarbage). A plain full collection (gc())
 *   leaves the young generation at the size the burst grew it to (16 MiB semi-spaces, 33 MiB
 *   committed) whenever V8 still sees a high allocation rate, which after 1,000 turns it
 *   often did; the low-memory one shrinks it, compacts the old generation and drops
 *   compiled code not in use, every time.
 * - malloc: LevelDB's blocks and iterator results (made on libuv's threads), Buffers and
 *   V8's off-heap data are malloc'd. glibc keeps freed chunks in its arenas and returns
 *   pages only from an arena's top; after 1,000 turns ~40 MB of free chunks stayed resident
 *   (malloc_trim(0) from gdb took an idle daemon from 141 to 102 MB RSS). So a moment after
 *   the collection, once V8 has released the buffers it found dead, the daemon trims.
 */
export class IdleCollector {
  private trim: MallocTrim | undefined | null = null; // null: not loaded yet
  private lastWork = 0;
  private timer: NodeJS.Timeout | undefined;
  private trimTimer: NodeJS.Timeout | undefined;

  /** `onNoTrim`: told once when malloc cannot be trimmed here (not glibc, no koffi binary). */
  constructor(
    private readonly idleMs: number,
    private readonly onNoTrim: () => void = () => undefined,
  ) {}

  /** Something happened: the next quiet spell ends in a collection. */
  touch(): void {
    this.lastWork = Date.now();
    this.timer ??= setTimeout(() => this.check(), this.idleMs).unref();
  }

  private check(): void {
    const quietFor = Date.now() - this.lastWork;
    if (quietFor < this.idleMs) {
      this.timer = setTimeout(() => this.check(), this.idleMs - quietFor).unref();
      return;
    }
    this.timer = undefined;
    void collectAllGarbage().then(() => {
      clearTimeout(this.trimTimer);
      this.trimTimer = setTimeout(() => {
        if (Date.now() - this.lastWork >= this.idleMs) this.trimMalloc();
      }, TRIM_AFTER_MS).unref();
    });
  }

  private trimMalloc(): void {
    if (this.trim === null) {
      this.trim = loadMallocTrim();
      if (!this.trim) this.onNoTrim();
    }
    this.trim?.();
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearTimeout(this.trimTimer);
  }
}

/**
 * What V8 does on a low-memory notification: full collections until nothing more is freed,
 * in its memory-reducing mode. Node lets JavaScript ask for it only through the inspector:
 * the in-process session's HeapProfiler.collectGarbage (no flags, no debugger attached).
 * Resolves when done; a node built without the inspector collects nothing here.
 */
function collectAllGarbage(): Promise<void> {
  if (!process.features.inspector) return Promise.resolve();
  return new Promise((resolve) => {
    const session = new Session();
    session.connect();
    // Disconnecting from inside the callback would deadlock the session: after it returns.
    session.post('HeapProfiler.collectGarbage', () => setImmediate(() => (session.disconnect(), resolve())));
  });
}
