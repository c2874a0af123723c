/**
 * Whether the runner has work under way (a prompt, a wake) whose model call has not yet
 * streamed anything. An eager sandbox is bound only once it has not: time to first token
 * never waits for a sandbox, and binding one (mounts, the host's configure, the pool's
 * refill) would otherwise share the CPU with the request and its first event.
 */
export class FirstOutputGate {
  private waiting = false;
  private readonly waiters: Array<() => void> = [];

  /** Work that leads to a model call has started (a kick), or a call (or a retry) was sent. */
  sent(): void {
    this.waiting = true;
  }

  /** Its first output came, or it ended without any. */
  passed(): void {
    if (!this.waiting) return;
    this.waiting = false;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Resolves when no work under way waits for its first output. */
  clear(): Promise<void> {
    return this.waiting ? new Promise((resolve) => this.waiters.push(resolve)) : Promise.resolve();
  }
}
