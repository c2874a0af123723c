import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SessionCreate,
  SessionDeltaNotification,
  SessionEvents,
  SessionGet,
  SessionPrompt,
  type SessionCreateParams,
} from '../../protocol/index.js';
import type { AgentdClient } from '../../clients/lib/index.js';
import { type TestDaemon } from '../../test/support/daemon.js';
import { MAX_SUBSCRIPTIONS_PER_CONNECTION } from '../../daemon/rpc/limits.js';
import { sleep, withTimeout } from './common.js';

// ---------------------------------------------------------------- driving sessions through the daemon

export interface TurnResult {
  ttft: number;
  total: number;
  end: string;
}

/** One client connection; tracks first deltas and turn ends of the sessions it drives. */
export class Driver {
  private readonly firstDelta = new Map<string, (t: number) => void>();
  private readonly turnEnd = new Map<string, (type: string) => void>();
  private readonly provisioned = new Map<string, (t: number) => void>();
  readonly provisionedAt = new Map<string, number>();
  /** Unsubscribes, per session followed, least recently used first: a connection may hold only so many. */
  private readonly following = new Map<string, () => Promise<void>>();

  constructor(readonly client: AgentdClient) {
    client.onNotification(SessionDeltaNotification, ({ sessionId }) => {
      const w = this.firstDelta.get(sessionId);
      if (!w) return;
      this.firstDelta.delete(sessionId);
      w(performance.now());
    });
  }

  async create(params: SessionCreateParams): Promise<string> {
    const { sessionId } = await this.client.request(SessionCreate, params);
    await this.makeRoom();
    // From its first event: an eager sandbox (a pooled one takes milliseconds) can be provisioned before the subscription starts.
    const { unsubscribe } = await this.client.subscribe(sessionId, 0, {
      onEvents: (events) => {
        for (const e of events) {
          if (e.type === 'turn.completed' || e.type === 'turn.failed' || e.type === 'turn.interrupted') {
            const w = this.turnEnd.get(sessionId);
            this.turnEnd.delete(sessionId);
            w?.(e.type === 'turn.failed' ? `failed: ${JSON.stringify(e.data)}` : e.type);
          } else if (e.type === 'sandbox.provisioned') {
            const t = performance.now();
            this.provisionedAt.set(sessionId, t);
            const w = this.provisioned.get(sessionId);
            this.provisioned.delete(sessionId); // nothing waits on it now: makeRoom may unsubscribe
            w?.(t);
          }
        }
      },
    });
    this.following.set(sessionId, unsubscribe);
    return sessionId;
  }

  /** At the daemon's cap, stops following the least recently used sessions nothing here waits on. */
  private async makeRoom(): Promise<void> {
    for (const [sessionId, unsubscribe] of this.following) {
      if (this.following.size < MAX_SUBSCRIPTIONS_PER_CONNECTION) return;
      if (this.turnEnd.has(sessionId) || this.firstDelta.has(sessionId) || this.provisioned.has(sessionId)) continue;
      this.following.delete(sessionId);
      await unsubscribe();
    }
  }

  /** Sends a prompt; resolves when the turn has ended, with the time to its first delta. */
  async turn(sessionId: string, content: string, timeoutMs = 60_000, settle = true): Promise<TurnResult> {
    const unsubscribe = this.following.get(sessionId);
    if (unsubscribe) {
      this.following.delete(sessionId); // re-inserted: now the most recently used
      this.following.set(sessionId, unsubscribe);
    }
    const first = new Promise<number>((resolve) => this.firstDelta.set(sessionId, resolve));
    const ended = new Promise<string>((resolve) => this.turnEnd.set(sessionId, resolve));
    const t0 = performance.now();
    await this.client.request(SessionPrompt, { sessionId, content });
    const end = await withTimeout(ended, timeoutMs, `turn of ${sessionId}`).catch((error: Error) => this.failWithLog(sessionId, error));
    const tEnd = performance.now();
    const tFirst = await withTimeout(first, 1000, `first delta of ${sessionId}`).catch(() => NaN);
    this.firstDelta.delete(sessionId);
    if (settle) await this.settle(sessionId);
    return { ttft: tFirst - t0, total: tEnd - t0, end };
  }

  /** Fails with `error`, and the session's log to say why. */
  private async failWithLog(sessionId: string, error: Error): Promise<never> {
    const { events } = await this.client.request(SessionEvents, { sessionId, from: 0 });
    throw new Error(`${error.message}; its log: ${events.map((e) => `${e.seq} ${e.type} ${JSON.stringify(e.data).slice(0, 120)}`).join('\n')}`);
  }

  /**
   * Waits until the session's runner has finished its turn loop (status idle). A prompt
   * sent between turn.completed and that point can be lost by the harness (see
   * benchLostWakeups), so every figure but that one waits here, outside its timings.
   */
  async settle(sessionId: string): Promise<void> {
    for (let i = 0; (await this.client.request(SessionGet, { sessionId })).status !== 'idle'; i++) {
      if (i > 5000) throw new Error(`${sessionId} did not go idle`);
      await sleep(1);
    }
  }

  waitProvisioned(sessionId: string, timeoutMs = 20_000): Promise<number> {
    const at = this.provisionedAt.get(sessionId);
    if (at !== undefined) return Promise.resolve(at);
    return withTimeout(new Promise<number>((resolve) => this.provisioned.set(sessionId, resolve)), timeoutMs, `sandbox of ${sessionId}`).catch((error: Error) =>
      this.failWithLog(sessionId, error),
    );
  }
}

/** Stops the daemon the way an operator would (its sandboxes close), then removes its data. */
export async function stopDaemon(daemon: TestDaemon): Promise<void> {
  if (daemon.proc.exitCode === null && daemon.proc.signalCode === null) {
    daemon.proc.kill('SIGTERM');
    await Promise.race([daemon.exited, sleep(15_000)]);
  }
  await daemon.dispose();
}

export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), 'agentd-bench-ttft-'));
  private n = 0;
  workspace(): string {
    const dir = join(this.dir, `ws-${this.n++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'hello.txt'), 'hello from the bench workspace\n'.repeat(20));
    return dir;
  }
}
