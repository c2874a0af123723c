/**
 * Everything a local sandbox needs decided before its launcher starts: the isolation level
 * (never below the floor, never silently weaker than asked), the workspace, the limits and
 * how they are held, the mount plan and the host's configuration.
 */
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST_CONFIG_ENV, LIMITS_DIR_INSIDE, PROXY_PORT_INSIDE, PROXY_SOCKET_INSIDE, type HostConfig, type HostLimits } from './host/config.js';
import { buildLaunch, type Launch } from './isolation/launch.js';
import { atLeast, type Check, type IsolationLevel } from './isolation/probe.js';
import { seccompPolicy } from './isolation/seccomp.js';
import type { Limiter, LimitPlacement } from './limits/index.js';
import type { SandboxSpec } from './provider.js';

const DEFAULT_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'TERM', 'TZ'];
const SERVER_NAME = /^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$/;
/** Directories a workspace may never be: the sandbox would get the machine's own files read-write. */
const NEVER_WORKSPACES = ['/', '/proc', '/sys', '/dev'];

const compiledRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hostEntry = path.join(compiledRoot, 'sandbox', 'host', 'main.js');

/** The compiled tree plus node_modules and package.json of the package it belongs to, read-only inside. */
function installPaths(): string[] {
  for (let dir = compiledRoot; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'node_modules'))) {
      return [...new Set([compiledRoot, path.join(dir, 'node_modules'), path.join(dir, 'package.json')])];
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the agentd package (package.json and node_modules) above ${compiledRoot}`);
  }
}

/** Whether a level works on this machine (probed once, when first needed). */
export type LevelCheck = (level: IsolationLevel) => Promise<Check>;

async function chooseLevel(spec: SandboxSpec, available: LevelCheck): Promise<IsolationLevel> {
  const floor = spec.minimumIsolation ?? 'none';
  const requested = spec.isolation ?? 'auto';
  if (requested === 'auto') {
    const reasons: string[] = [];
    for (const level of ['bwrap', 'namespaces', 'none'] as const) {
      if (!atLeast(level, floor)) break;
      const check = await available(level);
      if (check.ok) return level;
      reasons.push(`${level}: ${check.detail}`);
    }
    throw new Error(`no isolation at or above "${floor}" is available here (${reasons.join('; ')}); install bubblewrap, or start the daemon with a lower --isolation-floor`);
  }
  if (!atLeast(requested, floor)) throw new Error(`isolation "${requested}" is weaker than the floor "${floor}" this daemon enforces`);
  const check = await available(requested);
  if (!check.ok) throw new Error(`isolation "${requested}" was requested but is not available here: ${check.detail}`);
  return requested;
}

function validate(spec: SandboxSpec): string {
  if (!path.isAbsolute(spec.workspace)) throw new Error(`workspace must be an absolute path, got ${JSON.stringify(spec.workspace)}`);
  if (!existsSync(spec.workspace) || !statSync(spec.workspace).isDirectory()) throw new Error(`workspace ${spec.workspace} is not a directory`);
  const names = new Set<string>();
  for (const server of spec.mcpServers ?? []) {
    if (!SERVER_NAME.test(server.name)) throw new Error(`MCP server name ${JSON.stringify(server.name)} must be letters, digits, "-" and single "_"`);
    if (names.has(server.name)) throw new Error(`MCP server name ${JSON.stringify(server.name)} is used twice`);
    names.add(server.name);
  }
  const workspace = realpathSync(spec.workspace);
  if (NEVER_WORKSPACES.includes(workspace)) throw new Error(`workspace ${workspace} would give the sandbox the whole system; pick a project directory`);
  for (const hidden of spec.hide ?? []) {
    if (existsSync(hidden) && realpathSync(hidden) === workspace) throw new Error(`workspace ${workspace} is a path the sandbox must never see`);
  }
  return workspace;
}

export interface PreparedLaunch {
  id: string;
  level: IsolationLevel;
  workspace: string;
  launch: Launch;
  env: Record<string, string>;
  placement: LimitPlacement | null;
  warnings: string[];
  /** Removes what was made outside for this sandbox (scratch and staging dirs, its cgroup). */
  cleanup(): Promise<void>;
}

function warningsFor(id: string, level: IsolationLevel): string[] {
  if (level === 'none') return [`sandbox ${id} runs WITHOUT ISOLATION: its commands can read and write anything this user can, including the network`];
  if (level === 'namespaces') {
    return [`sandbox ${id} uses namespaces without bubblewrap: no seccomp filter (ptrace, keyrings, io_uring and other kernel interfaces are not filtered inside it)`];
  }
  return [];
}

function hostLimits(placement: LimitPlacement, spec: SandboxSpec, inside: boolean): HostLimits {
  const { limits } = spec;
  const counters = placement.counters;
  return {
    pids: limits!.pids,
    memoryMb: limits!.memoryMb,
    pidsMechanism: placement.pids,
    memoryMechanism: placement.memory,
    ...(counters ? { pidsEvents: inside ? `${LIMITS_DIR_INSIDE}/pids.events` : counters.pidsEvents } : {}),
    ...(counters ? { memoryEvents: inside ? `${LIMITS_DIR_INSIDE}/memory.events` : counters.memoryEvents } : {}),
  };
}

/** `umask`: the file-creation mask the tools run with (the host applies it). */
export async function prepareLaunch(spec: SandboxSpec, id: string, available: LevelCheck, limiter: Limiter, umask?: number): Promise<PreparedLaunch> {
  const workspace = validate(spec);
  const level = await chooseLevel(spec, available);
  const warnings = warningsFor(id, level);
  const placement = spec.limits ? limiter.place(id, spec.limits, level) : null;
  warnings.push(...(placement?.warnings ?? []));
  // The host's scratch is the private /tmp inside; a plain process gets a dir of its own, and the
  // namespaces level an empty dir where its root is assembled.
  const outsideDir = level === 'bwrap' ? null : mkdtempSync(path.join(tmpdir(), 'agentd-sandbox-'));
  const cleanup = async () => {
    await placement?.release();
    if (outsideDir) rmSync(outsideDir, { recursive: true, force: true });
  };
  try {
    return { id, level, workspace, placement, warnings, cleanup, ...assemble(spec, level, workspace, placement, outsideDir, umask) };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

function assemble(
  spec: SandboxSpec,
  level: IsolationLevel,
  workspace: string,
  placement: LimitPlacement | null,
  outsideDir: string | null,
  umask: number | undefined,
): { launch: Launch; env: Record<string, string> } {
  const inside = level !== 'none'; // the sandbox has its own mount and pid namespaces
  const scratch = inside ? '/tmp' : outsideDir!;
  const extras: { src: string; dst: string; readOnly: boolean }[] = [];
  if (inside && spec.proxySocket) extras.push({ src: spec.proxySocket, dst: PROXY_SOCKET_INSIDE, readOnly: false });
  if (inside && placement?.counters) {
    extras.push({ src: placement.counters.pidsEvents, dst: `${LIMITS_DIR_INSIDE}/pids.events`, readOnly: true });
    extras.push({ src: placement.counters.memoryEvents, dst: `${LIMITS_DIR_INSIDE}/memory.events`, readOnly: true });
  }
  const launch = buildLaunch({
    level,
    command: [process.execPath, hostEntry],
    workspace,
    readOnly: installPaths(),
    binds: spec.binds ?? [],
    hide: spec.hide ?? [],
    extras,
    cgroupProcs: placement?.procsFiles ?? [],
    ...(spec.limits ? { tmpfsBytes: spec.limits.memoryMb * 1024 * 1024 } : {}),
    ...(placement?.rlimits ? { rlimits: placement.rlimits } : {}),
    seccomp: level === 'bwrap' ? seccompPolicy().program : null,
    ...(level === 'namespaces' ? { stagingDir: outsideDir! } : {}),
  });
  const env: Record<string, string> = {};
  for (const name of spec.envAllowlist ?? DEFAULT_ENV_ALLOWLIST) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  env.HOME = inside ? '/tmp' : workspace;
  Object.assign(env, spec.env);
  const proxy = spec.proxySocket ? (inside ? { socket: PROXY_SOCKET_INSIDE, port: PROXY_PORT_INSIDE } : { socket: spec.proxySocket, port: 0 }) : undefined;
  const config: HostConfig = {
    workspace,
    mcpServers: spec.mcpServers ?? [],
    scratch,
    processScope: inside ? 'namespace' : placement?.procsFiles.length ? 'cgroup' : 'descendants',
    ...(proxy ? { proxy } : {}),
    ...(placement && spec.limits ? { limits: hostLimits(placement, spec, inside) } : {}),
    ...(umask !== undefined ? { umask } : {}),
  };
  env[HOST_CONFIG_ENV] = JSON.stringify(config);
  return { launch, env };
}
