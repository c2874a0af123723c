/**
 * Runs a short command inside a sandbox built exactly as the provider builds one (same mount
 * plan, namespaces, capabilities, seccomp), and reads back what the command saw: the probe
 * behind the isolation report and `agentd doctor`.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { buildLaunch, insideIds } from './launch.js';
import type { ContainmentReport, IsolationLevel } from '../types.js';
import { seccompPolicy } from './seccomp.js';
import { ownTempDir } from '../temp-dirs.js';

export interface RunResult {
  code: number | null;
  output: string;
}

/**
 * Runs `command` at `level` in `workspace` (default: the temp dir, which the probes do not
 * touch); never throws. Only the namespaces level needs a dir of its own, where its root is
 * assembled: a bwrap probe leaves nothing behind even when its process is killed mid-way.
 */
export async function runInside(level: IsolationLevel, command: string[], options: { workspace?: string; hide?: string[]; timeoutMs?: number } = {}): Promise<RunResult> {
  const stagingDir = level === 'namespaces' ? ownTempDir('probe') : undefined;
  try {
    const launch = buildLaunch({
      level, command, workspace: options.workspace ?? tmpdir(), cwd: options.workspace ?? tmpdir(), readOnly: [], binds: [], hide: options.hide ?? [], extras: [], cgroupProcs: [],
      seccomp: level === 'bwrap' ? seccompPolicy().program : null, ...(stagingDir ? { stagingDir } : {}),
    });
    return await new Promise<RunResult>((resolve) => {
      const child = spawn(launch.command, launch.args, {
        cwd: launch.cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['ignore', 'pipe', 'pipe', ...(launch.fd3 ? (['pipe'] as const) : [])],
        timeout: options.timeoutMs ?? 10_000,
      });
      // A launcher that fails before reading its fd 3 resets the pipe: that failure is reported by its exit.
      if (launch.fd3) (child.stdio[3] as NodeJS.WritableStream).on('error', () => undefined).end(launch.fd3);
      let output = '';
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      child.on('error', (error) => resolve({ code: null, output: error.message }));
      child.on('close', (code) => resolve({ code, output: output.trim() }));
    });
  } finally {
    if (stagingDir) rmSync(stagingDir, { recursive: true, force: true });
  }
}

const field = (status: string, name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '?';

/**
 * What a command inside a sandbox at `level` is: its uid, its capabilities, its seccomp mode,
 * and whether `hidden` (the daemon's data dir, seen through `workspace` around it) and
 * /proc/sys can be reached.
 */
export async function probeContainment(level: IsolationLevel, hidden: string[], workspace: string | undefined): Promise<ContainmentReport> {
  // A hidden dir may be seen as an empty, read-only mask; a hidden file as an empty one.
  const checks = hidden.map((_, i) => `p="$${i + 1}"; if [ -d "$p" ]; then [ -z "$(ls -A "$p" 2>/dev/null)" ] || echo "visible: $p"; elif [ -s "$p" ]; then echo "visible: $p"; fi`);
  const script = ['cat /proc/self/status', ...checks, '(echo 60 > /proc/sys/vm/swappiness) 2>/dev/null && echo "writable: /proc/sys"', 'true'].join('\n');
  const result = await runInside(level, ['/bin/sh', '-c', script, 'agentd-probe', ...hidden], { ...(workspace ? { workspace } : {}), hide: hidden });
  if (result.code !== 0) return { ok: false, uid: '?', capabilities: '?', seccomp: '?', masked: `the probe sandbox failed: ${result.output.slice(-300)}` };
  const status = result.output;
  const uid = field(status, 'Uid').split(/\s+/)[0]!;
  const caps = ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'CapInh'].map((name) => [name, field(status, name)] as const);
  const noCaps = caps.every(([, v]) => /^0+$/.test(v));
  const nnp = field(status, 'NoNewPrivs') === '1';
  const seccompMode = field(status, 'Seccomp');
  const visible = status.split('\n').filter((l) => l.startsWith('visible: ') || l.startsWith('writable: '));
  const outside = process.getuid?.() ?? -1;
  const expectedSeccomp = level !== 'bwrap' || seccompPolicy().program === null || seccompMode === '2';
  return {
    ok: uid !== '0' && Number(uid) === insideIds().uid && noCaps && nnp && visible.length === 0 && expectedSeccomp,
    uid: `uid ${uid} inside (uid ${outside} outside)`,
    capabilities: noCaps ? `none (effective, permitted, bounding, ambient, inheritable all empty)${nnp ? ', no_new_privs set' : ', no_new_privs NOT set'}` : `PRESENT: ${caps.map(([n, v]) => `${n} ${v}`).join(', ')}`,
    seccomp: seccompMode === '2' ? seccompPolicy().summary : level === 'bwrap' ? `not applied (${seccompPolicy().summary})` : 'none at this level (unshare cannot load a filter)',
    masked: visible.length ? `REACHABLE: ${visible.join('; ')}` : `${hidden.length ? `${hidden.join(', ')} hidden` : 'nothing to hide'}; /proc/sys and other kernel knobs read-only`,
  };
}
