/**
 * The local sandbox provider's factory (the composition root's import) and the machine
 * probes `agentd doctor` runs. The interface it implements is in types.ts.
 */
import { probeLevel } from './isolation/probe.js';
import { chooseLevel, validate } from './local-launch.js';
import { provisionCold } from './local-sandbox.js';
import { detectLimiter, type Limiter } from './limits/index.js';
import { WarmPool } from './pool.js';
import { sweepTempDirs } from './temp-dirs.js';
import { builtinTools } from './tools/index.js';
import type { Check, IsolationLevel, IsolationReport, SandboxLimits, SandboxProvider, ToolDefinition } from './types.js';

export { probeIsolation } from './isolation/probe.js';
export { probeContainment } from './isolation/containment.js';
export { probeLimits } from './limits/index.js';
export { probeLateBinding } from './pool.js';

/** The built-in tools' definitions (their code is loaded here, in the daemon; the host loads each on first use). */
const BUILTIN_TOOLS: readonly ToolDefinition[] = (await Promise.all(builtinTools.map((t) => t.load()))).map(({ name, description, inputSchema }) => ({ name, description, inputSchema }));

const probed = new Map<IsolationLevel, Promise<Check>>();

/** Each level is probed (by starting a real sandbox) once per process, when first needed. */
function probeOnce(level: IsolationLevel): Promise<Check> {
  let check = probed.get(level);
  if (!check) probed.set(level, (check = probeLevel(level)));
  return check;
}

export interface LocalProviderOptions {
  /** Replaces the machine probe (a test seam, and for a doctor-checked report). */
  isolationReport?: Promise<IsolationReport>;
  /** The file-creation mask tools run with (default: this process's), e.g. the user's when the caller tightened its own. */
  toolUmask?: number;
  /** How sandboxes are held to their limits (default: detected, see limits/index.ts). */
  limiter?: Limiter;
  /**
   * Keep this many bubblewrap sandboxes started ahead of need (root only; see pool.ts), with
   * the hidden paths and limits most sessions get. Sessions asking for something else get cold ones.
   */
  pool?: { size: number; hide: string[]; limits?: SandboxLimits };
}

/**
 * Sandboxes as local process trees: bubblewrap, else namespaces, else a plain process (with a
 * warning), never below `spec.minimumIsolation`.
 */
export function createLocalProvider(options: LocalProviderOptions = {}): SandboxProvider {
  sweepTempDirs(); // what a provider of a process killed with -9 left behind
  const { isolationReport, toolUmask: umask } = options;
  const available = isolationReport ? async (level: IsolationLevel) => (await isolationReport).levels[level] : probeOnce;
  let limiter = options.limiter;
  const poolOptions = options.pool;
  const pool =
    poolOptions && poolOptions.size > 0
      ? new WarmPool({ size: poolOptions.size, shape: { hide: poolOptions.hide, ...(poolOptions.limits ? { limits: poolOptions.limits } : {}) }, limiter: (limiter ??= detectLimiter()), available, ...(umask !== undefined ? { umask } : {}) })
      : null;
  return {
    builtinTools: BUILTIN_TOOLS,
    provision: async (spec) => {
      limiter ??= detectLimiter();
      if (!pool) return provisionCold(spec, available, limiter, umask);
      const done = pool.busy();
      try {
        const workspace = validate(spec);
        const pooled = (await chooseLevel(spec, available)) === 'bwrap' ? await pool.take(spec, workspace) : (pool.missed(), null);
        return pooled ?? (await provisionCold(spec, available, limiter, umask));
      } finally {
        done();
      }
    },
    ...(pool ? { pool: () => pool.status() } : {}),
    close: async () => {
      await pool?.close();
      limiter?.close();
    },
  };
}
