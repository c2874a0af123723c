/**
 * The daemon's own configuration: `$AGENTD_HOME/config.json` (optional, validated), then the
 * environment, then `agentd daemon` options, each overriding the one before. It lives in
 * the data dir, which no sandbox can see, so a sandbox can never loosen it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { NetworkPolicy } from '../protocol/index.js';
import type { IsolationLevel } from '../sandbox/types.js';

const Level = z.enum(['bwrap', 'namespaces', 'none']);
const Preset = NetworkPolicy.shape.presets.unwrap().element;
type Preset = z.infer<typeof Preset>;
/** A pooled sandbox holds a few MB: more than this is a typo, not a plan. */
const MAX_POOL = 1024;

const DaemonConfigFile = z
  .object({
    /** The weakest sandbox isolation a session may get (default bwrap). */
    isolationFloor: Level.optional(),
    sandbox: z
      .object({
        /** Each sandbox's limits: the default and the most a session may ask for. */
        limits: z.object({ pids: z.number().int().min(32).optional(), memoryMb: z.number().int().min(64).optional() }).strict().optional(),
        /** The most a fork may copy, in allocated bytes. */
        forkMaxBytes: z.number().int().min(0).optional(),
        /** Sandboxes kept started ahead of need (bubblewrap, daemon as root); 0: none. */
        pool: z.number().int().min(0).max(MAX_POOL).optional(),
      })
      .strict()
      .optional(),
    network: z
      .object({
        /** Presets every new session without a network policy of its own gets (default none). */
        presets: z.array(Preset).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export interface DaemonConfig {
  isolationFloor: IsolationLevel;
  /** Where the floor came from, for `agentd doctor` and the log. */
  floorSource: string;
  sandboxLimits: { pids: number; memoryMb: number };
  forkMaxBytes: number;
  /** Sandboxes kept started ahead of need. */
  sandboxPool: number;
  /** Network presets of a session created without a network policy. */
  networkPresets: Preset[];
}

export const DEFAULT_CONFIG: DaemonConfig = {
  isolationFloor: 'bwrap',
  floorSource: 'default',
  sandboxLimits: { pids: 1024, memoryMb: 4096 },
  forkMaxBytes: 10 * 1024 ** 3,
  sandboxPool: 0,
  networkPresets: [],
};

/** A configuration that cannot be used, with the file or option at fault. */
export class ConfigError extends Error {}

function readFile(file: string): z.infer<typeof DaemonConfigFile> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    // No file: defaults. A data dir that is not a directory is reported by the daemon's own check.
    if (['ENOENT', 'ENOTDIR'].includes(String((error as NodeJS.ErrnoException).code))) return {};
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = DaemonConfigFile.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

function level(value: string, where: string): IsolationLevel {
  const parsed = Level.safeParse(value);
  if (!parsed.success) throw new ConfigError(`${where}: must be bwrap, namespaces or none, got ${JSON.stringify(value)}`);
  return parsed.data;
}

function positive(value: string | undefined, where: string, min: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`${where}: must be an integer of at least ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** A comma-separated list of preset names ("" for none). */
function presets(value: string): Preset[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((name) => {
    const parsed = Preset.safeParse(name);
    if (!parsed.success) throw new ConfigError(`AGENTD_NETWORK_PRESETS: unknown preset ${JSON.stringify(name)}; known: ${Preset.options.join(', ')}`);
    return parsed.data;
  });
}

/** `agentd daemon [--isolation-floor LEVEL]` (bin/main refuses anything else before this runs). */
function parseDaemonArgs(argv: string[]): { isolationFloor?: IsolationLevel } {
  let floor: string | undefined;
  try {
    floor = parseArgs({ args: argv, options: { 'isolation-floor': { type: 'string' } }, strict: true }).values['isolation-floor'];
  } catch (error) {
    throw new ConfigError(`agentd daemon: ${(error as Error).message}`);
  }
  return floor === undefined ? {} : { isolationFloor: level(floor, '--isolation-floor') };
}

/**
 * The configuration for a daemon on `configFile`, `env` and `argv`. Environment:
 * AGENTD_ISOLATION_FLOOR, AGENTD_SANDBOX_PIDS, AGENTD_SANDBOX_MEMORY_MB, AGENTD_FORK_MAX_BYTES, AGENTD_SANDBOX_POOL,
 * AGENTD_NETWORK_PRESETS (comma-separated).
 */
export function loadDaemonConfig(configFile: string, env: NodeJS.ProcessEnv = process.env, argv: string[] = []): DaemonConfig {
  const file = readFile(configFile);
  const args = parseDaemonArgs(argv);
  const config: DaemonConfig = {
    ...DEFAULT_CONFIG,
    sandboxLimits: { ...DEFAULT_CONFIG.sandboxLimits, ...file.sandbox?.limits },
    forkMaxBytes: file.sandbox?.forkMaxBytes ?? DEFAULT_CONFIG.forkMaxBytes,
    sandboxPool: file.sandbox?.pool ?? DEFAULT_CONFIG.sandboxPool,
    networkPresets: file.network?.presets ?? DEFAULT_CONFIG.networkPresets,
  };
  if (file.isolationFloor) Object.assign(config, { isolationFloor: file.isolationFloor, floorSource: configFile });
  if (env.AGENTD_ISOLATION_FLOOR) Object.assign(config, { isolationFloor: level(env.AGENTD_ISOLATION_FLOOR, 'AGENTD_ISOLATION_FLOOR'), floorSource: 'AGENTD_ISOLATION_FLOOR' });
  if (args.isolationFloor) Object.assign(config, { isolationFloor: args.isolationFloor, floorSource: '--isolation-floor' });
  config.sandboxLimits.pids = positive(env.AGENTD_SANDBOX_PIDS, 'AGENTD_SANDBOX_PIDS', 32) ?? config.sandboxLimits.pids;
  config.sandboxLimits.memoryMb = positive(env.AGENTD_SANDBOX_MEMORY_MB, 'AGENTD_SANDBOX_MEMORY_MB', 64) ?? config.sandboxLimits.memoryMb;
  config.forkMaxBytes = positive(env.AGENTD_FORK_MAX_BYTES, 'AGENTD_FORK_MAX_BYTES', 0) ?? config.forkMaxBytes;
  config.sandboxPool = positive(env.AGENTD_SANDBOX_POOL, 'AGENTD_SANDBOX_POOL', 0) ?? config.sandboxPool;
  if (env.AGENTD_NETWORK_PRESETS !== undefined) config.networkPresets = presets(env.AGENTD_NETWORK_PRESETS);
  if (config.sandboxPool > MAX_POOL) throw new ConfigError(`AGENTD_SANDBOX_POOL: at most ${MAX_POOL}, got ${config.sandboxPool}`);
  return config;
}
