import { Session } from 'node:inspector';

/**
 * V8 keeps the heap it grew during a burst of work (many turns, a big request, a
 * misbehaving client) long after the work is done: a long-lived daemon would sit on memory
 * it no longer uses. Once nothing has happened for `idleMs` after some work, the daemon asks
 * V8 for a low-memory collection (see collectAllGarbage), once per quiet spell, never while
 * busy. A plain full collection (gc()) leaves the young generation at the size the burst
 * grew it to (16 MiB semi-spaces, 33 MiB committed) whenever V8 still sees a high
 * allocation rate, which after 1,000 turns it often did; the low-memory one shrinks it,
 * compacts the old generation and drops compiled code not in use, every time.
 *
 * What malloc freed (LevelDB's blocks and iterator results made on libuv's threads, Buffers)
 * glibc keeps in its arenas; only malloc_trim(3) would give it back, and node offers no way
 * to call it without a native addon, which would need a compiler at install.
 */
export class IdleCollector {
  private lastWork = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly idleMs: number) {}

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
    void collectAllGarbage();
  }

  dispose(): void {
    clearTimeout(this.timer);
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
