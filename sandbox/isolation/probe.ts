import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export type IsolationLevel = 'bwrap' | 'namespaces' | 'none';

export interface Check {
  ok: boolean;
  detail: string;
}

export interface IsolationReport {
  best: IsolationLevel;
  levels: Record<IsolationLevel, Check>;
  userNamespaces: Check;
  netNamespaces: Check;
  nodePty: Check;
  ripgrep: Check;
}

export function findExecutable(binary: string, searchPath = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string | null {
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

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

const isRoot = () => process.getuid?.() === 0;

/** `unshare` flags for a private pid/ipc/uts/net/mount namespace set, as root or via a user namespace. */
export function unshareFlags(): string[] {
  const flags = ['--pid', '--fork', '--kill-child', '--mount', '--mount-proc', '--net', '--ipc', '--uts'];
  return isRoot() ? flags : ['--user', '--map-root-user', ...flags];
}

async function probeBwrap(): Promise<Check> {
  const bwrap = findExecutable('bwrap');
  if (!bwrap) return { ok: false, detail: 'bwrap not found on PATH (install bubblewrap)' };
  const check = await run(bwrap, ['--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--die-with-parent', '--new-session', 'true']);
  return check.ok ? { ok: true, detail: `${bwrap} works (pid, ipc, uts and net namespaces)` } : { ok: false, detail: `${bwrap} is present but fails: ${check.detail}` };
}

async function probeNamespaces(): Promise<Check> {
  const unshare = findExecutable('unshare');
  if (!unshare) return { ok: false, detail: 'unshare (util-linux) not found on PATH' };
  const check = await run(unshare, [...unshareFlags(), 'true']);
  return check.ok
    ? { ok: true, detail: `${unshare} works (pid, ipc, uts, net and mount namespaces; the filesystem is not hidden at this level)` }
    : { ok: false, detail: `${unshare} fails: ${check.detail}` };
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
  const userArgs = isRoot() ? ['--user', 'true'] : ['--user', '--map-root-user', 'true'];
  const netArgs = isRoot() ? ['--net', 'true'] : ['--user', '--map-root-user', '--net', 'true'];
  const unshare = findExecutable('unshare');
  const [bwrap, namespaces, nodePty, ripgrep, userNs, netNs] = await Promise.all([
    probeBwrap(),
    probeNamespaces(),
    probeNodePty(),
    probeRipgrep(),
    unshare ? run(unshare, userArgs) : Promise.resolve({ ok: false, detail: 'unshare not found' }),
    unshare ? run(unshare, netArgs) : Promise.resolve({ ok: false, detail: 'unshare not found' }),
  ]);
  const none: Check = { ok: true, detail: 'a plain process: no isolation (always available, never chosen silently)' };
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
