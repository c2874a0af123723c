import type { ContentBlock } from '../../protocol/index.js';
import type { Sandbox, SandboxProvider, SandboxSpec, ToolContent, ToolResult } from '../../sandbox/types.js';

export interface SlotEvents {
  provisioned(sandbox: Sandbox, durationMs: number): Promise<void>;
  lost(reason: string): Promise<void>;
}

/**
 * A session's one sandbox, provisioned on first use. Cattle: when it dies the call in
 * flight comes back as `sandbox_lost` and the next call provisions a fresh one on the
 * same workspace.
 */
export class SandboxSlot {
  private current: Promise<Sandbox> | undefined;
  private closing = false;

  constructor(
    private readonly provider: SandboxProvider,
    private readonly spec: SandboxSpec,
    private readonly events: SlotEvents,
  ) {}

  get provisioned(): boolean {
    return this.current !== undefined;
  }

  get(): Promise<Sandbox> {
    if (!this.current) {
      const started = performance.now();
      const attempt = this.provider.provision(this.spec).then(async (sandbox) => {
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

  async execute(name: string, input: Record<string, unknown>, signal: AbortSignal): Promise<ToolResult> {
    const started = performance.now();
    let sandbox: Sandbox;
    try {
      sandbox = await this.get();
      // Died since the last call (its end not yet recorded): this call gets a fresh one, once it is.
      if (!sandbox.alive) {
        await sandbox.ended;
        sandbox = await this.get();
      }
    } catch (error) {
      return { content: [{ type: 'text', text: `the sandbox could not be provisioned: ${(error as Error).message}` }], isError: true, errorKind: 'sandbox_lost', durationMs: performance.now() - started };
    }
    return sandbox.execute(name, input, { signal });
  }

  async close(): Promise<void> {
    this.closing = true;
    const current = this.current;
    this.current = undefined;
    if (current) await current.then((s) => s.close(), () => undefined);
  }
}

/** Sandbox tool output as Messages-API content blocks. */
export function toContentBlocks(content: ToolContent[]): ContentBlock[] {
  return content.map((c) =>
    c.type === 'text'
      ? { type: 'text', text: c.text }
      : { type: 'image', source: { type: 'base64', media_type: c.mimeType as 'image/png', data: c.data } },
  );
}
