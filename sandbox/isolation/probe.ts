import { spawn } from 'node:child_process';
import { runInside } from './containment.js';
import { findExecutable } from './which.js';
import type { Check, IsolationLevel, IsolationReport } from '../types.js';

export { findExecutable };

function run(command: string, args: string[]): Promise<Check> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5_000 });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', (error) => resolve({ ok: false, detail: error.message }));
    child.on('close', (code, signal) =>
      resolve(code === 0 ? { ok: true, detail: output.trim() } : { ok: false, detail: output.trim() || `exited with ${code ?? signal}` }),
    );
  });
}

const SBIN_PATH = () => `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

const LEVEL_NEEDS: Record<IsolationLevel, { needs: string[]; works: string }> = {
  bwrap: { needs: ['bwrap'], works: 'bwrap works: user, pid, ipc, uts, net and mount namespaces, no capabilities, seccomp filter' },
  namespaces: {
    needs: ['unshare', 'setpriv', 'mount', 'umount', 'pivot_root', 'bash'],
    works: 'unshare and mount(8) work: user, pid, ipc, uts, net and mount namespaces, no capabilities; no seccomp filter',
  },
  none: { needs: [], works: 'a plain process: no isolation (always available, never chosen silently)' },
};

/** Whether a real sandbox at `level` starts (it runs /bin/true), or the reason it cannot. */
export async function probeLevel(level: IsolationLevel): Promise<Check> {
  const { needs, works } = LEVEL_NEEDS[level];
  const missing = needs.filter((tool) => !findExecutable(tool, SBIN_PATH()));
  if (missing.length) return { ok: false, detail: `${missing.join(', ')} not found on PATH` };
  if (level === 'none') return { ok: true, detail: works };
  const result = await runInside(level, ['/bin/true']);
  return result.code === 0 ? { ok: true, detail: works } : { ok: false, detail: `a ${level} sandbox fails to start: ${result.output.slice(-500) || `exit ${result.code}`}` };
}

async function probeNodePty(): Promise<Check> {
  try {
    await import('@lydell/node-pty');
    return { ok: true, detail: '@lydell/node-pty (node-pty with prebuilt binaries) loads' };
  } catch (error) {
    return { ok: false, detail: `@lydell/node-pty does not load: ${(error as Error).message}` };
  }
}

async function probeRipgrep(): Promise<Check> {
  const rg = findExecutable('rg');
  if (!rg) return { ok: false, detail: 'rg not found on PATH; grep uses the built-in search' };
  const check = await run(rg, ['--version']);
  return check.ok ? { ok: true, detail: `${rg}: ${check.detail.split('\n')[0]}` } : { ok: false, detail: `${rg} fails: ${check.detail}` };
}

/** What isolation this machine offers, and why; for `agentd doctor` and for choosing a level. */
export async function probeIsolation(): Promise<IsolationReport> {
  const unshare = findExecutable('unshare');
  const [bwrap, namespaces, nodePty, ripgrep, userNs, netNs] = await Promise.all([
    probeLevel('bwrap'),
    probeLevel('namespaces'),
    probeNodePty(),
    probeRipgrep(),
    unshare ? run(unshare, ['--user', '--map-root-user', 'true']) : Promise.resolve({ ok: false, detail: 'unshare not found' }),
    unshare ? run(unshare, ['--user', '--map-root-user', '--net', 'true']) : Promise.resolve({ ok: false, detail: 'unshare not found' }),
  ]);
  const none = await probeLevel('none');
  const best: IsolationLevel = bwrap.ok ? 'bwrap' : namespaces.ok ? 'namespaces' : 'none';
  return {
    best,
    levels: { bwrap, namespaces, none },
    userNamespaces: userNs.ok ? { ok: true, detail: 'user namespaces work' } : { ok: false, detail: `user namespaces unavailable: ${userNs.detail}` },
    netNamespaces: netNs.ok ? { ok: true, detail: 'network namespaces work' } : { ok: false, detail: `network namespaces unavailable: ${netNs.detail}` },
    nodePty,
    ripgrep,
  };
}
