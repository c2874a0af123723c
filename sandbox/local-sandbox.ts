import { randomBytes } from 'node:crypto';
import type { Server } from 'node:net';
import type { HostTimings } from './host/protocol.js';
import { HostProcess } from './host-process.js';
import { prepareLaunch, type LevelCheck } from './local-launch.js';
import type { Limiter, LimitPlacement } from './limits/index.js';
import type { AppliedLimits, ExecuteOptions, IsolationLevel, Sandbox, SandboxLimits, SandboxSpec, ToolDefinition, ToolResult } from './types.js';

/** A bound, configured host: the session's sandbox. */
export class LocalSandbox implements Sandbox {
  readonly ended: Promise<{ reason: string }>;

  constructor(
    readonly id: string,
    readonly isolation: IsolationLevel,
    readonly warnings: string[],
    readonly limits: AppliedLimits | null,
    readonly pooled: boolean,
    private readonly host: HostProcess,
    /** Where the host's start-up time went (for the bench); null for a host that refused its configuration. */
    readonly timings: Promise<HostTimings | null>,
  ) {
    this.ended = host.ended;
  }

  get alive(): boolean {
    return this.host.alive;
  }

  tools(): Promise<ToolDefinition[]> {
    return this.host.tools();
  }

  execute(name: string, input: Record<string, unknown>, options?: ExecuteOptions): Promise<ToolResult> {
    return this.host.execute(name, input, options);
  }

  close(): Promise<void> {
    return this.host.close();
  }
}

/** A host's answer to its configuration: the proxy's listener it handed over goes to the session's proxy. */
export function configured({ timings, listener }: { timings: HostTimings; listener: Server | null }, spec: SandboxSpec): HostTimings {
  if (listener) spec.proxy?.serve(listener);
  return timings;
}

/** The session's limits as they are held: by what mechanism each is enforced (none without a placement). */
export function appliedLimits(placement: LimitPlacement | null, limits: SandboxLimits | undefined): AppliedLimits | null {
  return placement && limits ? { ...limits, pidsMechanism: placement.pids, memoryMechanism: placement.memory } : null;
}

export const sandboxId = (sessionId: string) => `${sessionId}-${randomBytes(4).toString('hex')}`;

/** Starts a host at the chosen isolation level, bound to the spec from the start. */
export async function provisionCold(spec: SandboxSpec, available: LevelCheck, limiter: Limiter, umask?: number): Promise<LocalSandbox> {
  const id = sandboxId(spec.sessionId);
  const prepared = await prepareLaunch(spec, id, available, limiter, umask);
  const { launch, level, warnings, placement } = prepared;
  for (const warning of warnings) process.stderr.write(`agentd: WARNING: ${warning}\n`);
  const host = await HostProcess.start(launch, prepared.env, placement, prepared.cleanup);
  let timings: HostTimings;
  try {
    timings = configured(await host.configure(prepared.config), spec);
  } catch (error) {
    throw await host.failedStart(error as Error);
  }
  return new LocalSandbox(id, level, warnings, appliedLimits(placement, spec.limits), false, host, Promise.resolve(timings));
}
