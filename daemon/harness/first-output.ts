/**
 * Whether the runner's model call is still waiting for its first output. An eager sandbox
 * is bound only once it is not: time to first token never waits for a sandbox, and
 * binding one (mounts, the host's configure, the pool's refill) would otherwise share
 * the CPU with the request and its first event.
 */
export class FirstOutputGate {
  private waiting = false;
  private readonly waiters: Array<() => void> = [];

  /** A model call (or a retry of one) has been sent. */
  sent(): void {
    this.waiting = true;
  }

  /** Its first output came, or it ended without any. */
  passed(): void {
    if (!this.waiting) return;
    this.waiting = false;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Resolves when no model call waits for its first output. */
  clear(): Promise<void> {
    return this.waiting ? new Promise((resolve) => this.waiters.push(resolve)) : Promise.resolve();
  }
}
