/**
 * What the daemon allows of a session's sandbox: never weaker isolation than its floor, never
 * larger limits than its maximum, never a workspace that would show the sandbox the data dir
 * itself (or `/`, or a system directory), and the data dir hidden in every sandbox.
 */
import { realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AgentdError, ErrorCode, type SessionCreateParams } from '../protocol/index.js';
import { atLeast, type SandboxProvider, type SandboxSpec } from '../sandbox/types.js';
import type { DaemonConfig } from './config.js';
import type { DataPaths } from './paths.js';

type SandboxRequest = SessionCreateParams['sandbox'];

/** Workspaces that would hand the sandbox the system itself, read-write. */
const SYSTEM_TREES = ['/proc', '/sys', '/dev', '/run', '/boot', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/var/run'];
/** Directories that hold everyone's files: a project inside them is fine, the whole of them is not. */
const SHARED_ROOTS = ['/', '/home', '/var', '/opt', '/srv', '/mnt', '/media', '/tmp', '/var/tmp'];

const within = (child: string, parent: string) => child === parent || child.startsWith(parent === '/' ? '/' : `${parent}/`);

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export class SandboxPolicy {
  private readonly home: string;
  private readonly forks: string;

  constructor(
    readonly config: DaemonConfig,
    paths: DataPaths,
  ) {
    this.home = real(paths.home);
    this.forks = join(this.home, basename(paths.workspaces));
  }

  /** Why `workspace` may not be used, or null. Forks' copies under the data dir's workspaces/ are allowed. */
  workspaceProblem(workspace: string): string | null {
    const path = real(workspace);
    if (within(path, this.home) && !path.startsWith(`${this.forks}/`)) {
      return `workspace ${path} is the daemon's data dir or inside it (${this.home}); sandboxes may never see it`;
    }
    if (SHARED_ROOTS.includes(path)) return `workspace ${path} would give the sandbox everyone's files; pick a project directory`;
    const system = SYSTEM_TREES.find((tree) => within(path, tree));
    if (system) return `workspace ${path} is a system directory (${system}); pick a project directory`;
    return null;
  }

  checkWorkspace(workspace: string): void {
    const problem = this.workspaceProblem(workspace);
    if (problem) throw new AgentdError(ErrorCode.WorkspaceForbidden, problem, { workspace });
  }

  /** A session's sandbox request against the floor and the maximum, at session/create. */
  checkRequest(request: SandboxRequest): void {
    const floor = this.config.isolationFloor;
    if (request?.isolation && !atLeast(request.isolation, floor)) {
      throw new AgentdError(
        ErrorCode.IsolationBelowFloor,
        `sandbox.isolation "${request.isolation}" is weaker than this daemon's floor "${floor}"; start the daemon with --isolation-floor ${request.isolation} to allow it`,
        { requested: request.isolation, floor },
      );
    }
    const max = this.config.sandboxLimits;
    for (const key of ['pids', 'memoryMb'] as const) {
      const asked = request?.limits?.[key];
      if (asked !== undefined && asked > max[key]) {
        throw new AgentdError(ErrorCode.LimitExceeded, `sandbox.limits.${key}: ${asked} is above this daemon's maximum ${max[key]}`, { limit: `sandbox.limits.${key}`, max: max[key] });
      }
    }
  }

  /** The parts of a sandbox spec the daemon decides. A request above today's maximum gets the maximum. */
  specFor(request: SandboxRequest): Pick<SandboxSpec, 'hide' | 'minimumIsolation' | 'limits'> {
    const max = this.config.sandboxLimits;
    return {
      hide: [this.home],
      minimumIsolation: this.config.isolationFloor,
      limits: { pids: Math.min(request?.limits?.pids ?? max.pids, max.pids), memoryMb: Math.min(request?.limits?.memoryMb ?? max.memoryMb, max.memoryMb) },
    };
  }

  /** The provider, refusing a workspace this daemon does not allow (a session made elsewhere, or before a change). */
  police(provider: SandboxProvider): SandboxProvider {
    return {
      builtinTools: provider.builtinTools,
      provision: async (spec) => {
        const problem = this.workspaceProblem(spec.workspace);
        if (problem) throw new Error(problem);
        return provider.provision(spec);
      },
      ...(provider.pool ? { pool: () => provider.pool!() } : {}),
      close: async () => provider.close?.(),
    };
  }
}
