/**
 * Everything a local sandbox needs decided before its launcher starts: the isolation level
 * (never below the floor, never silently weaker than asked), the workspace, the limits and
 * how they are held, the mount plan and the host's configuration. A pooled sandbox is
 * planned in two parts: what it starts with (no session yet), and what binding it adds.
 */
import { existsSync, realpathSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS_DIR_INSIDE, PROXY_PORT_INSIDE, type HostConfig, type HostLimits } from './host/protocol.js';
import { lateBindPlan, type LateBind } from './isolation/late-bind.js';
import { atLowestPriority, buildLaunch, type Launch, type LaunchPlan } from './isolation/launch.js';
import { mountOps, type MountOp } from './isolation/mounts.js';
import { seccompPolicy } from './isolation/seccomp.js';
import type { Limiter, LimitPlacement } from './limits/index.js';
import { ownTempDir } from './temp-dirs.js';
import { atLeast, type Check, type IsolationLevel, type SandboxLimits, type SandboxSpec } from './types.js';

const DEFAULT_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'TERM', 'TZ'];
const SERVER_NAME = /^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*$/;
/** Directories a workspace may never be: the sandbox would get the machine's own files read-write. */
const NEVER_WORKSPACES = ['/', '/proc', '/sys', '/dev'];

const compiledRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The host, bundled into one file at build time (scripts/post-build.mjs). */
export const HOST_ENTRY = path.join(compiledRoot, 'sandbox', 'host', 'bundle', 'main.cjs');

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

export async function chooseLevel(spec: SandboxSpec, available: LevelCheck): Promise<IsolationLevel> {
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

/** The workspace's real path, once the spec is found usable. */
export function validate(spec: SandboxSpec): string {
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

export function warningsFor(id: string, level: IsolationLevel): string[] {
  if (level === 'none') return [`sandbox ${id} runs WITHOUT ISOLATION: its commands can read and write anything this user can, including the network`];
  if (level === 'namespaces') {
    return [`sandbox ${id} uses namespaces without bubblewrap: no seccomp filter (ptrace, keyrings, io_uring and other kernel interfaces are not filtered inside it)`];
  }
  return [];
}

/** What a sandbox is mounted and started with, apart from its level's launcher. */
interface Shape {
  workspace?: string;
  binds: SandboxSpec['binds'];
  hide: string[];
  limits?: SandboxLimits;
}

/** The launch plan: mounts, namespaces, limits. Without a workspace, a pooled sandbox's (bwrap only). */
function launchPlan(level: IsolationLevel, shape: Shape, placement: LimitPlacement | null, outsideDir: string | null): LaunchPlan {
  const inside = level !== 'none'; // the sandbox has its own mount and pid namespaces
  const extras: { src: string; dst: string; readOnly: boolean }[] = [];
  if (inside && placement?.counters) {
    extras.push({ src: placement.counters.pidsEvents, dst: `${LIMITS_DIR_INSIDE}/pids.events`, readOnly: true });
    extras.push({ src: placement.counters.memoryEvents, dst: `${LIMITS_DIR_INSIDE}/memory.events`, readOnly: true });
  }
  return {
    level,
    command: [process.execPath, HOST_ENTRY],
    ...(shape.workspace ? { workspace: shape.workspace } : {}),
    cwd: shape.workspace ?? '/',
    readOnly: installPaths(),
    binds: shape.binds ?? [],
    hide: shape.hide,
    extras,
    cgroupProcs: placement?.procsFiles ?? [],
    ...(shape.limits ? { tmpfsBytes: shape.limits.memoryMb * 1024 * 1024 } : {}),
    ...(placement?.rlimits ? { rlimits: placement.rlimits } : {}),
    seccomp: level === 'bwrap' ? seccompPolicy().program : null,
    ...(level === 'namespaces' ? { stagingDir: outsideDir! } : {}),
    ...(level === 'bwrap' && !shape.workspace ? { infoFd: true } : {}),
  };
}

/** The environment of the shell and the session's servers (and of a cold host's launcher). */
function sandboxEnv(spec: Pick<SandboxSpec, 'envAllowlist' | 'env'>, inside: boolean, workspace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of spec.envAllowlist ?? DEFAULT_ENV_ALLOWLIST) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  env.HOME = inside ? '/tmp' : workspace;
  Object.assign(env, spec.env);
  return env;
}

function hostLimits(placement: LimitPlacement, limits: SandboxLimits, inside: boolean): HostLimits {
  const counters = placement.counters;
  return {
    pids: limits.pids,
    memoryMb: limits.memoryMb,
    pidsMechanism: placement.pids,
    memoryMechanism: placement.memory,
    ...(counters ? { pidsEvents: inside ? `${LIMITS_DIR_INSIDE}/pids.events` : counters.pidsEvents } : {}),
    ...(counters ? { memoryEvents: inside ? `${LIMITS_DIR_INSIDE}/memory.events` : counters.memoryEvents } : {}),
  };
}

/** What `agentd/configure` tells the host: the same for a cold and a pooled sandbox. */
export function hostConfig(spec: SandboxSpec, level: IsolationLevel, workspace: string, placement: LimitPlacement | null, outsideDir: string | null, umask: number | undefined): HostConfig {
  const inside = level !== 'none';
  const ca = spec.proxyCa ? { ca: spec.proxyCa } : {};
  // Any free port without a network namespace of its own: the machine's loopback is shared.
  const proxy = spec.proxy ? { port: inside ? PROXY_PORT_INSIDE : 0, ...ca } : undefined;
  return {
    workspace,
    env: sandboxEnv(spec, inside, workspace),
    mcpServers: spec.mcpServers ?? [],
    // The host's scratch is the private /tmp inside; a plain process gets a dir of its own.
    scratch: inside ? '/tmp' : outsideDir!,
    processScope: inside ? 'namespace' : placement?.procsFiles.length ? 'cgroup' : 'descendants',
    ...(proxy ? { proxy } : {}),
    ...(placement && spec.limits ? { limits: hostLimits(placement, spec.limits, inside) } : {}),
    ...(umask !== undefined ? { umask } : {}),
  };
}

export interface PreparedLaunch {
  id: string;
  level: IsolationLevel;
  launch: Launch;
  /** The launcher's environment. */
  env: Record<string, string>;
  config: HostConfig;
  placement: LimitPlacement | null;
  warnings: string[];
  /** Removes what was made outside for this sandbox (scratch and staging dirs, its cgroup). */
  cleanup(): Promise<void>;
}

/** A cold sandbox: everything bound at start. `umask`: the file-creation mask the tools run with. */
export async function prepareLaunch(spec: SandboxSpec, id: string, available: LevelCheck, limiter: Limiter, umask?: number): Promise<PreparedLaunch> {
  const workspace = validate(spec);
  const level = await chooseLevel(spec, available);
  const warnings = warningsFor(id, level);
  const placement = spec.limits ? limiter.place(id, spec.limits, level) : null;
  warnings.push(...(placement?.warnings ?? []));
  // A plain process gets a scratch dir of its own, the namespaces level an empty dir where its root is assembled.
  const outsideDir = level === 'bwrap' ? null : ownTempDir('sandbox');
  const cleanup = async () => {
    await placement?.release();
    if (outsideDir) rmSync(outsideDir, { recursive: true, force: true });
  };
  try {
    const plan = launchPlan(level, { workspace, binds: spec.binds, hide: spec.hide ?? [], ...optional(spec) }, placement, outsideDir);
    const config = hostConfig(spec, level, workspace, placement, outsideDir, umask);
    return { id, level, launch: buildLaunch(plan), env: config.env, config, placement, warnings, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

const optional = (spec: Pick<SandboxSpec, 'limits'>) => (spec.limits ? { limits: spec.limits } : {});

/** What the pool's sandboxes start with: the daemon's defaults (hidden paths, limits). */
export interface PoolShape {
  hide: string[];
  limits?: SandboxLimits;
}

export interface PreparedBlank {
  id: string;
  /** The limits it starts with. */
  limits?: SandboxLimits;
  launch: Launch;
  env: Record<string, string>;
  placement: LimitPlacement | null;
  /** The mounts it starts with. */
  ops: MountOp[];
  warnings: string[];
  cleanup(): Promise<void>;
}

/** A pooled sandbox (bwrap): started with no workspace, proxy or session; see late-bind.ts. */
export function prepareBlank(shape: PoolShape, id: string, limiter: Limiter | null): PreparedBlank {
  if (shape.limits && !limiter) throw new Error('a pooled sandbox with limits needs a limiter');
  const placement = shape.limits ? limiter!.place(id, shape.limits, 'bwrap') : null;
  const cleanup = async () => placement?.release();
  const plan = launchPlan('bwrap', { binds: [], hide: shape.hide, ...optional(shape) }, placement, null);
  const env = sandboxEnv({}, true, '/');
  return { id, ...optional(shape), launch: atLowestPriority(buildLaunch(plan)), env, placement, ops: mountOps(plan), warnings: placement?.warnings ?? [], cleanup };
}

/**
 * What binding `blank` to `spec` takes (the mounts, and the tmpfs sizes of other limits), or
 * null when a pooled sandbox cannot become exactly the cold one `spec` would get.
 */
export function planBinding(blank: PreparedBlank, spec: SandboxSpec, workspace: string): LateBind | null {
  if (!spec.limits !== !blank.limits) return null;
  const sameLimits = spec.limits?.pids === blank.limits?.pids && spec.limits?.memoryMb === blank.limits?.memoryMb;
  if (!sameLimits && !blank.placement?.setLimits) return null; // rlimits are set at start
  const plan = launchPlan('bwrap', { workspace, binds: spec.binds, hide: spec.hide ?? [], ...optional(spec) }, blank.placement, null);
  return lateBindPlan(blank.ops, mountOps(plan));
}
