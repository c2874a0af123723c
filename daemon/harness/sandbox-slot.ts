import type { Sandbox, SandboxProvider, SandboxSpec } from '../../sandbox/types.js';
import { contentBlocks, type ToolOutcome } from './tool-content.js';

export interface SlotEvents {
  provisioned(sandbox: Sandbox, durationMs: number): Promise<void>;
  lost(reason: string): Promise<void>;
}

/** Where a runner's sandbox tools run: its own slot, or (a sub-agent's) its parent's. */
export interface ToolSlot {
  get(): Promise<Sandbox>;
  execute(name: string, input: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome>;
  close(): Promise<void>;
}

/**
 * A sub-agent's view of its parent's slot: the parent's current slot is looked up for
 * each call (the parent's runner may have been replaced), and the sub-agent never closes
 * it. Where the parent's slot is not to be had (its parent runs on another daemon), the
 * sub-agent gets a slot of its own over the same workspace, and closes that one.
 */
export class BorrowedSlot implements ToolSlot {
  private own: Promise<ToolSlot> | undefined;

  constructor(
    private readonly parent: () => Promise<ToolSlot | undefined>,
    private readonly ownSlot: () => Promise<ToolSlot>,
  ) {}

  private async slot(): Promise<ToolSlot> {
    return (await this.parent()) ?? (this.own ??= this.ownSlot());
  }

  async get(): Promise<Sandbox> {
    return (await this.slot()).get();
  }

  async execute(name: string, input: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome> {
    return (await this.slot()).execute(name, input, signal);
  }

  async close(): Promise<void> {
    const own = this.own;
    this.own = undefined;
    await own?.then((slot) => slot.close(), () => undefined);
  }
}

/**
 * A session's one sandbox, provisioned on first use. Cattle: when it dies the call in
 * flight comes back as `sandbox_lost` and the next call provisions a fresh one on the
 * same workspace.
 */
export class SandboxSlot implements ToolSlot {
  private current: Promise<Sandbox> | undefined;
  private closing = false;

  constructor(
    private readonly provider: SandboxProvider,
    /** What to provision, asked at each provision: what it needs (the session's proxy) is made then, not before. */
    private readonly spec: () => Promise<SandboxSpec>,
    private readonly events: SlotEvents,
  ) {}

  get(): Promise<Sandbox> {
    if (!this.current) {
      const started = performance.now();
      const attempt = this.spec().then((spec) => this.provider.provision(spec)).then(async (sandbox) => {
        await this.events.provisioned(sandbox, performance.now() - started);
        void sandbox.ended.then(({ reason }) => {
          if (this.current !== attempt) return;
          this.current = undefined;
          if (!this.closing) void this.events.lost(reason);
        });
        return sandbox;
      });
      this.current = attempt;
      attempt.catch(() => {
        if (this.current === attempt) this.current = undefined;
      });
    }
    return this.current;
  }

  /** Runs a tool in the sandbox (provisioning it first if need be); its output as content blocks. */
  async execute(name: string, input: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome> {
    let sandbox: Sandbox;
    try {
      sandbox = await this.get();
      // Died since the last call (its end not yet recorded): this call gets a fresh one, once it is.
      if (!sandbox.alive) {
        await sandbox.ended;
        sandbox = await this.get();
      }
    } catch (error) {
      return { content: [{ type: 'text', text: `the sandbox could not be provisioned: ${(error as Error).message}` }], isError: true, errorKind: 'sandbox_lost' };
    }
    const { content, isError, errorKind } = await sandbox.execute(name, input, { signal });
    return { content: contentBlocks(content), isError, ...(errorKind ? { errorKind } : {}) };
  }

  async close(): Promise<void> {
    this.closing = true;
    const current = this.current;
    this.current = undefined;
    if (current) await current.then((s) => s.close(), () => undefined);
  }
}
