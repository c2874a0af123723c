/**
 * The daemon's own configuration: `$AGENTD_HOME/config.json` (optional, validated), then the
 * environment, then `agentd daemon` options, each overriding the one before. It lives in
 * the data dir, which no sandbox can see, so a sandbox can never loosen it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { IsolationLevel } from '../sandbox/provider.js';
import { ModelPrice, type PriceTable } from './harness/usage.js';

const Level = z.enum(['bwrap', 'namespaces', 'none']);

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
      })
      .strict()
      .optional(),
    /** US dollars per million tokens by model: session usage gets a cost, and budgets a `maxCost`. */
    prices: z.record(z.string(), ModelPrice).optional(),
  })
  .strict();

export interface DaemonConfig {
  isolationFloor: IsolationLevel;
  /** Where the floor came from, for `agentd doctor` and the log. */
  floorSource: string;
  sandboxLimits: { pids: number; memoryMb: number };
  forkMaxBytes: number;
  prices: PriceTable;
}

export const DEFAULT_CONFIG: DaemonConfig = {
  isolationFloor: 'bwrap',
  floorSource: 'default',
  sandboxLimits: { pids: 1024, memoryMb: 4096 },
  forkMaxBytes: 10 * 1024 ** 3,
  prices: {},
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
 * AGENTD_ISOLATION_FLOOR, AGENTD_SANDBOX_PIDS, AGENTD_SANDBOX_MEMORY_MB, AGENTD_FORK_MAX_BYTES.
 */
export function loadDaemonConfig(configFile: string, env: NodeJS.ProcessEnv = process.env, argv: string[] = []): DaemonConfig {
  const file = readFile(configFile);
  const args = parseDaemonArgs(argv);
  const config: DaemonConfig = {
    ...DEFAULT_CONFIG,
    sandboxLimits: { ...DEFAULT_CONFIG.sandboxLimits, ...file.sandbox?.limits },
    forkMaxBytes: file.sandbox?.forkMaxBytes ?? DEFAULT_CONFIG.forkMaxBytes,
    prices: file.prices ?? {},
  };
  if (file.isolationFloor) Object.assign(config, { isolationFloor: file.isolationFloor, floorSource: configFile });
  if (env.AGENTD_ISOLATION_FLOOR) Object.assign(config, { isolationFloor: level(env.AGENTD_ISOLATION_FLOOR, 'AGENTD_ISOLATION_FLOOR'), floorSource: 'AGENTD_ISOLATION_FLOOR' });
  if (args.isolationFloor) Object.assign(config, { isolationFloor: args.isolationFloor, floorSource: '--isolation-floor' });
  config.sandboxLimits.pids = positive(env.AGENTD_SANDBOX_PIDS, 'AGENTD_SANDBOX_PIDS', 32) ?? config.sandboxLimits.pids;
  config.sandboxLimits.memoryMb = positive(env.AGENTD_SANDBOX_MEMORY_MB, 'AGENTD_SANDBOX_MEMORY_MB', 64) ?? config.sandboxLimits.memoryMb;
  config.forkMaxBytes = positive(env.AGENTD_FORK_MAX_BYTES, 'AGENTD_FORK_MAX_BYTES', 0) ?? config.forkMaxBytes;
  return config;
}
