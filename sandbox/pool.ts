/**
 * The warm pool: bubblewrap sandboxes started ahead of need, their host up and its MCP
 * handshake done, but bound to no session: no workspace, no proxy socket, no configuration.
 * Provisioning takes one (it is never handed out twice), mounts the session's workspace and
 * the rest into it (isolation/late-bind.ts), configures its host, and starts a replacement.
 * Refills run one at a time, never while a sandbox is being provisioned, and at the lowest
 * CPU priority until bound (isolation/launch.ts atLowestPriority): neither a burst of
 * sessions nor their turns compete with the pool's own starts.
 * Root only: see late-bind.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HostProcess } from './host-process.js';
import { LateBinder, lateBindSupport, SandboxGone, type BindTarget, type LateBind } from './isolation/late-bind.js';
import { hostConfig, planBinding, prepareBlank, type LevelCheck, type PoolShape, type PreparedBlank } from './local-launch.js';
import { appliedLimits, configured, LocalSandbox, sandboxId } from './local-sandbox.js';
import type { Limiter } from './limits/index.js';
import type { Check, PoolStatus, SandboxSpec } from './types.js';

/**
 * Failures in a row after which the pool stops: of starting pooled sandboxes, or of serving
 * them (binding, or the host taking its configuration). Kept apart: a start that works says
 * nothing of the binding that follows, which may fail every time.
 */
const MAX_FAILURES = 3;
const RETRY_MS = 1_000;

interface Blank {
  prepared: PreparedBlank;
  host: HostProcess;
  /** Its pid 1 and mount namespace, as bubblewrap reported them. */
  target: BindTarget;
}

/** Starts one pooled sandbox, its host warmed up. */
async function startBlank(shape: PoolShape, limiter: Limiter | null): Promise<Blank> {
  const prepared = prepareBlank(shape, `pool-${randomBytes(4).toString('hex')}`, limiter);
  const host = await HostProcess.start(prepared.launch, prepared.env, prepared.placement, prepared.cleanup);
  try {
    await host.warm();
    const info = await host.bwrapInfo();
    return { prepared, host, target: { pid: info['child-pid'], mntNamespace: info['mnt-namespace'] } };
  } catch (error) {
    await host.close();
    throw error;
  }
}

/** A pooled host that died while it was being bound: replaced, not held against the pool. */
class HostDied extends Error {}

/**
 * Mounts the session's workspace (and the rest) into `blank` and hands it out with its host's
 * configuration on the way: the session's first call follows that down the same pipe, so a
 * pooled provision waits for no host round trip. A host that refuses the configuration is
 * condemned, so the calls behind it end sandbox_lost, and `refused` hears of it. Closes the
 * host when binding fails.
 */
async function bindBlank(binder: LateBinder, blank: Blank, plan: LateBind, spec: SandboxSpec, workspace: string, umask: number | undefined, refused: (why: string) => void): Promise<LocalSandbox> {
  const { prepared, host } = blank;
  try {
    if (spec.limits && prepared.limits && (spec.limits.pids !== prepared.limits.pids || spec.limits.memoryMb !== prepared.limits.memoryMb)) {
      prepared.placement!.setLimits!(spec.limits);
    }
    await binder.bind(blank.target, plan);
    const config = hostConfig(spec, 'bwrap', workspace, prepared.placement, null, umask);
    const timings = host.configureAhead(config, refused).then((answer) => answer && configured(answer, spec));
    return new LocalSandbox(sandboxId(spec.sessionId), 'bwrap', prepared.warnings, appliedLimits(prepared.placement, spec.limits), true, host, timings);
  } catch (error) {
    const died = !host.alive || error instanceof SandboxGone;
    await host.close();
    throw died ? new HostDied((error as Error).message) : error;
  }
}

/**
 * Whether a sandbox started before its workspace existed can be bound to one here: starts
 * one (without limits, so nothing is made outside it), binds an empty dir holding a marker,
 * and reads the marker with a tool call inside.
 */
export async function probeLateBinding(available: LevelCheck): Promise<Check> {
  const support = lateBindSupport();
  if (!support.ok) return support;
  const bwrap = await available('bwrap');
  if (!bwrap.ok) return { ok: false, detail: `bubblewrap does not work here: ${bwrap.detail}` };
  const dir = mkdtempSync(path.join(tmpdir(), 'agentd-pool-probe-'));
  const marker = randomBytes(8).toString('hex');
  writeFileSync(path.join(dir, 'marker'), marker);
  const binder = new LateBinder();
  try {
    const blank = await startBlank({ hide: [] }, null);
    const spec = { sessionId: 'pool-probe', workspace: dir };
    const plan = planBinding(blank.prepared, spec, dir);
    if (!plan) {
      await blank.host.close();
      return { ok: false, detail: 'a pooled sandbox cannot be bound to a plain workspace' };
    }
    const sandbox = await bindBlank(binder, blank, plan, spec, dir, undefined, () => undefined); // a refusal shows in the read below
    try {
      const read = await sandbox.execute('read_file', { path: 'marker' });
      const text = read.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
      return text.includes(marker) ? support : { ok: false, detail: `a bound pooled sandbox does not see its workspace: ${text.slice(0, 200)}` };
    } finally {
      await sandbox.close();
    }
  } catch (error) {
    return { ok: false, detail: (error as Error).message };
  } finally {
    binder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PoolOptions {
  size: number;
  shape: PoolShape;
  limiter: Limiter;
  available: LevelCheck;
  umask?: number;
}

export class WarmPool {
  private readonly ready: Blank[] = [];
  private starting = 0;
  /** Provisions in progress: refills wait for them. */
  private provisioning = 0;
  private readonly counts = { served: 0, cold: 0, replaced: 0 };
  private disabled: string | undefined;
  private readonly failures = { start: 0, serve: 0 };
  private closed = false;
  private readonly probed: Promise<void>;
  /** Starts in flight, which close() waits for. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly binder = new LateBinder();

  constructor(private readonly options: PoolOptions) {
    this.probed = probeLateBinding(options.available).then((check) => {
      if (!check.ok) this.disabled = `no pool: ${check.detail}`;
      this.refill();
    });
  }

  status(): PoolStatus {
    return {
      size: this.options.size,
      ready: this.ready.length,
      starting: this.starting,
      ...this.counts,
      ...(this.disabled ? { disabled: this.disabled } : {}),
    };
  }

  /** Marks a provision in progress (refills wait) until the returned function is called. */
  busy(): () => void {
    this.provisioning++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.provisioning--;
      this.refill();
    };
  }

  /** Counts a sandbox provisioned cold. */
  missed(): void {
    this.counts.cold++;
  }

  /**
   * A pooled sandbox bound to `spec` (at bwrap isolation), or null when there is none ready or
   * none fits (the caller provisions cold). A pooled one whose binding fails is closed, never
   * handed out.
   */
  async take(spec: SandboxSpec, workspace: string): Promise<LocalSandbox | null> {
    while (!this.closed && !this.disabled) {
      const blank = this.ready.shift();
      if (!blank) break;
      if (!blank.host.alive) {
        this.counts.replaced++; // died while waiting; a replacement starts once this provision is done
        continue;
      }
      const plan = planBinding(blank.prepared, spec, workspace);
      if (!plan) {
        this.ready.unshift(blank); // fits no session like this one; it stays for others
        break;
      }
      try {
        const sandbox = await bindBlank(this.binder, blank, plan, spec, workspace, this.options.umask, (why) => this.failed('serve', `a pooled sandbox's ${why}`));
        void sandbox.timings.then((configured) => configured && (this.failures.serve = 0));
        this.counts.served++;
        return sandbox;
      } catch (error) {
        if (error instanceof HostDied) this.counts.replaced++;
        else this.failed('serve', `binding a pooled sandbox failed: ${(error as Error).message}`);
      } finally {
        this.refill();
      }
    }
    this.counts.cold++;
    return null;
  }

  private failed(what: 'start' | 'serve', reason: string): void {
    process.stderr.write(`agentd: ${reason}\n`);
    if (++this.failures[what] >= MAX_FAILURES) {
      this.disabled = `no pool: stopped after ${MAX_FAILURES} failures in a row; the last: ${reason}`;
      void this.drain();
    }
  }

  private refill(): void {
    if (this.closed || this.disabled || this.provisioning > 0 || this.starting > 0) return;
    if (this.ready.length >= this.options.size) return;
    this.starting++;
    // In a later turn of the event loop: starting one forks this process (some ms at a
    // daemon's size, and node's spawn is synchronous), which must not come before the
    // caller of the provision that made room has its sandbox. A provision begun
    // meanwhile takes precedence; its end refills.
    const started = this.probed
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => (this.disabled || this.closed || this.provisioning > 0 ? null : startBlank(this.options.shape, this.options.limiter)))
      .then(
        (blank) => {
          this.starting--;
          if (!blank) return;
          if (this.closed || this.disabled) return void this.discard(blank);
          this.failures.start = 0;
          this.ready.push(blank);
          void blank.host.ended.then(() => {
            const at = this.ready.indexOf(blank);
            if (at === -1) return; // taken (or drained) before it ended
            this.ready.splice(at, 1);
            this.counts.replaced++;
            this.refill();
          });
          this.refill();
        },
        (error: unknown) => {
          this.starting--;
          this.failed('start', `a pooled sandbox did not start: ${(error as Error).message}`);
          setTimeout(() => this.refill(), RETRY_MS).unref();
        },
      );
    this.pending.add(started);
    void started.finally(() => this.pending.delete(started));
  }

  private async discard(blank: Blank): Promise<void> {
    await blank.host.close();
  }

  private async drain(): Promise<void> {
    const blanks = this.ready.splice(0);
    await Promise.all(blanks.map((b) => this.discard(b)));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.probed;
    await Promise.allSettled([...this.pending]);
    await this.drain();
    this.binder.close();
  }
}
