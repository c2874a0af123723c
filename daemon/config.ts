/**
 * The daemon's own configuration: `$AGENTD_HOME/config.json` (optional, validated), then the
 * environment, then `agentd daemon` options, each overriding the one before. It lives in
 * the data dir, which no sandbox can see, so a sandbox can never loosen it.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { NetworkPolicy } from '../protocol/index.js';
import type { IsolationLevel } from '../sandbox/types.js';
import { ModelPrice, type PriceTable } from './harness/usage.js';

const Level = z.enum(['bwrap', 'namespaces', 'none']);
const Preset = NetworkPolicy.shape.presets.unwrap().element;
type Preset = z.infer<typeof Preset>;
/** A pooled sandbox holds a few MB: more than this is a typo, not a plan. */
const MAX_POOL = 1024;

const DaemonConfigFile = z
  .object({
    /** The weakest sandbox isolation a session may get (default bwrap). */
    isolationFloor: Level.optional(),
    /** The model API: where (ANTHROPIC_BASE_URL) and the default model (AGENTD_MODEL), for daemons started without that environment. */
    model: z.object({ baseUrl: z.url().optional(), name: z.string().min(1).max(200).optional() }).strict().optional(),
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
    /** The network listener, HOST:PORT (WebSocket and web client); none by default. */
    listen: z.string().optional(),
    /** PEM files of its TLS certificate (chain) and key; without them only a loopback address is allowed. */
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    remote: z
      .object({
        /** Origins, besides the listener's own, whose pages may log in and open a WebSocket. */
        origins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'an origin is scheme://host[:port]')).max(64).optional(),
        /** WebSocket connections one token may hold on this daemon at once. */
        maxConnectionsPerToken: z.number().int().min(1).optional(),
        /** Connections (TLS handshakes and HTTP requests included) this daemon holds at once. */
        maxConnections: z.number().int().min(1).optional(),
        /** How long a connection may take to finish its TLS handshake and send its request headers. */
        handshakeTimeoutMs: z.number().int().min(100).optional(),
        /** How often a WebSocket is pinged; one that has not answered the previous ping is closed. */
        pingIntervalMs: z.number().int().min(100).optional(),
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
    /** US dollars per million tokens by model: session usage gets a cost, and budgets a `maxCost`. */
    prices: z.record(z.string(), ModelPrice).optional(),
  })
  .strict();

export interface ListenConfig {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  origins: string[];
  maxConnectionsPerToken: number;
  maxConnections: number;
  handshakeTimeoutMs: number;
  pingIntervalMs: number;
}

export const DEFAULT_REMOTE = { maxConnectionsPerToken: 32, maxConnections: 1024, handshakeTimeoutMs: 10_000, pingIntervalMs: 30_000 };

export interface DaemonConfig {
  isolationFloor: IsolationLevel;
  /** Where the floor came from, for `agentd doctor` and the log. */
  floorSource: string;
  sandboxLimits: { pids: number; memoryMb: number };
  forkMaxBytes: number;
  /** The model API's base URL, when not Anthropic's. */
  modelBaseUrl?: string;
  /** The model of sessions that name none. */
  defaultModel: string;
  prices: PriceTable;
  /** The network listener, when there is one. */
  listen?: ListenConfig;
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
  defaultModel: 'claude-sonnet-5-5',
  prices: {},
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

/** `agentd daemon`'s options (bin/main refuses anything else before this runs). */
export const DAEMON_OPTIONS = {
  'isolation-floor': { type: 'string' },
  listen: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

interface DaemonArgs {
  isolationFloor?: IsolationLevel;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
}

function parseDaemonArgs(argv: string[]): DaemonArgs {
  let values;
  try {
    values = parseArgs({ args: argv, options: DAEMON_OPTIONS, strict: true }).values;
  } catch (error) {
    throw new ConfigError(`agentd daemon: ${(error as Error).message}`);
  }
  const floor = values['isolation-floor'];
  return {
    ...(floor === undefined ? {} : { isolationFloor: level(floor, '--isolation-floor') }),
    ...(values.listen !== undefined ? { listen: values.listen } : {}),
    ...(values['tls-cert'] !== undefined ? { tlsCert: values['tls-cert'] } : {}),
    ...(values['tls-key'] !== undefined ? { tlsKey: values['tls-key'] } : {}),
  };
}

/** Loopback only: 127.0.0.0/8, ::1, localhost. Plain ws:// goes nowhere else. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** HOST:PORT ([v6]:PORT for IPv6). */
function parseListen(value: string, where: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ConfigError(`${where}: must be HOST:PORT (e.g. 127.0.0.1:8443, 0.0.0.0:8443 or [::1]:8443), got ${JSON.stringify(value)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** The listener from the file, environment and options, each overriding the one before; refused when it would be plain off loopback. */
function listenConfig(file: z.infer<typeof DaemonConfigFile>, env: NodeJS.ProcessEnv, args: DaemonArgs, configFile: string): ListenConfig | undefined {
  const pick = (flag: string, arg: string | undefined, envName: string, field: 'listen' | 'tlsCert' | 'tlsKey') => {
    if (arg !== undefined) return { value: arg, where: flag };
    if (env[envName]) return { value: env[envName]!, where: envName };
    const fromFile = file[field];
    return fromFile !== undefined ? { value: fromFile, where: `${configFile}: ${field}` } : undefined;
  };
  const listen = pick('--listen', args.listen, 'AGENTD_LISTEN', 'listen');
  const cert = pick('--tls-cert', args.tlsCert, 'AGENTD_TLS_CERT', 'tlsCert');
  const key = pick('--tls-key', args.tlsKey, 'AGENTD_TLS_KEY', 'tlsKey');
  if (!listen) {
    if (cert || key) throw new ConfigError(`${(cert ?? key)!.where} is given without a listen address (--listen HOST:PORT)`);
    return undefined;
  }
  const { host, port } = parseListen(listen.value, listen.where);
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError(`TLS needs both a certificate and its key: ${cert ? 'no --tls-key' : 'no --tls-cert'} (${(cert ?? key)!.where} is given)`);
  if (!cert && !isLoopback(host)) {
    throw new ConfigError(`${listen.where}: plain ws:// is allowed on loopback only, and ${host} is not; give --tls-cert and --tls-key (PEM files) to listen there with TLS`);
  }
  const remote = { ...DEFAULT_REMOTE, ...file.remote };
  return {
    host,
    port,
    ...(cert && key ? { tls: { certFile: cert.value, keyFile: key.value } } : {}),
    origins: file.remote?.origins ?? [],
    maxConnectionsPerToken: remote.maxConnectionsPerToken,
    maxConnections: remote.maxConnections,
    handshakeTimeoutMs: remote.handshakeTimeoutMs,
    pingIntervalMs: remote.pingIntervalMs,
  };
}

/**
 * The configuration for a daemon on `configFile`, `env` and `argv`. Environment:
 * AGENTD_ISOLATION_FLOOR, AGENTD_SANDBOX_PIDS, AGENTD_SANDBOX_MEMORY_MB, AGENTD_FORK_MAX_BYTES,
 * ANTHROPIC_BASE_URL, AGENTD_MODEL, AGENTD_SANDBOX_POOL, AGENTD_NETWORK_PRESETS (comma-separated),
 * AGENTD_LISTEN, AGENTD_TLS_CERT, AGENTD_TLS_KEY.
 */
export function loadDaemonConfig(configFile: string, env: NodeJS.ProcessEnv = process.env, argv: string[] = []): DaemonConfig {
  const file = readFile(configFile);
  const args = parseDaemonArgs(argv);
  const config: DaemonConfig = {
    ...DEFAULT_CONFIG,
    sandboxLimits: { ...DEFAULT_CONFIG.sandboxLimits, ...file.sandbox?.limits },
    forkMaxBytes: file.sandbox?.forkMaxBytes ?? DEFAULT_CONFIG.forkMaxBytes,
    prices: file.prices ?? {},
    sandboxPool: file.sandbox?.pool ?? DEFAULT_CONFIG.sandboxPool,
    networkPresets: file.network?.presets ?? DEFAULT_CONFIG.networkPresets,
  };
  if (file.isolationFloor) Object.assign(config, { isolationFloor: file.isolationFloor, floorSource: configFile });
  if (env.AGENTD_ISOLATION_FLOOR) Object.assign(config, { isolationFloor: level(env.AGENTD_ISOLATION_FLOOR, 'AGENTD_ISOLATION_FLOOR'), floorSource: 'AGENTD_ISOLATION_FLOOR' });
  if (args.isolationFloor) Object.assign(config, { isolationFloor: args.isolationFloor, floorSource: '--isolation-floor' });
  config.sandboxLimits.pids = positive(env.AGENTD_SANDBOX_PIDS, 'AGENTD_SANDBOX_PIDS', 32) ?? config.sandboxLimits.pids;
  config.sandboxLimits.memoryMb = positive(env.AGENTD_SANDBOX_MEMORY_MB, 'AGENTD_SANDBOX_MEMORY_MB', 64) ?? config.sandboxLimits.memoryMb;
  config.forkMaxBytes = positive(env.AGENTD_FORK_MAX_BYTES, 'AGENTD_FORK_MAX_BYTES', 0) ?? config.forkMaxBytes;
  const baseUrl = env.ANTHROPIC_BASE_URL || file.model?.baseUrl;
  if (baseUrl) config.modelBaseUrl = baseUrl;
  config.defaultModel = env.AGENTD_MODEL || file.model?.name || config.defaultModel;
  config.sandboxPool = positive(env.AGENTD_SANDBOX_POOL, 'AGENTD_SANDBOX_POOL', 0) ?? config.sandboxPool;
  if (env.AGENTD_NETWORK_PRESETS !== undefined) config.networkPresets = presets(env.AGENTD_NETWORK_PRESETS);
  if (config.sandboxPool > MAX_POOL) throw new ConfigError(`AGENTD_SANDBOX_POOL: at most ${MAX_POOL}, got ${config.sandboxPool}`);
  const listen = listenConfig(file, env, args, configFile);
  if (listen) config.listen = listen;
  return config;
}
