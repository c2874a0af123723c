import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type CollectGarbage = () => void;

/** Between the two collections of a quiet spell. */
const AFTER_MS = 2_000;

/**
 * V8 keeps the heap it grew during a burst of work (many turns, a big request, a
 * misbehaving client) long after the work is done: a long-lived daemon would sit on
 * memory it no longer uses. Once nothing has happened for `idleMs` after some work, the
 * daemon asks V8 for two full collections, after which V8 has shrunk the heap and returned
 * its free pages (the second, shortly after, returns what the first freed). Never
 * while busy; once per quiet spell.
 */
export class IdleCollector {
  private readonly collect: CollectGarbage | undefined = exposeGc();
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
    this.collect?.();
    // V8 returns most freed pages only after the collection that follows the one that freed them.
    setTimeout(() => {
      if (Date.now() - this.lastWork >= this.idleMs) this.collect?.();
    }, AFTER_MS).unref();
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

/**
 * V8's gc(), made available at run time: the flag applies to contexts created after it
 * is set. Called through a function of that context (gc() ignores option objects from
 * another context).
 */
function exposeGc(): CollectGarbage | undefined {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('typeof gc === "function" ? () => gc() : undefined');
  return typeof gc === 'function' ? (gc as CollectGarbage) : undefined;
}
