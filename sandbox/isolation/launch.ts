import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { findExecutable, unshareFlags, type IsolationLevel } from './probe.js';
import { PROXY_SOCKET_INSIDE } from '../host/config.js';

export interface Launch {
  command: string;
  args: string[];
  cwd: string;
}

export interface LaunchPlan {
  level: IsolationLevel;
  hostEntry: string; // absolute path of the compiled host main.js
  readOnly: string[]; // install paths the host needs (compiled tree, node_modules, package.json)
  workspace: string;
  binds: { path: string; readOnly: boolean }[];
  /** The proxy's socket outside, mounted at PROXY_SOCKET_INSIDE. */
  proxySocket?: string;
}

// Only what programs need from /etc: no shadow, no ssh keys, no machine secrets.
const ETC_FILES = [
  'passwd', 'group', 'hosts', 'host.conf', 'resolv.conf', 'nsswitch.conf', 'gai.conf', 'protocols', 'services',
  'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'ssl', 'ca-certificates', 'ca-certificates.conf', 'pki', 'alternatives',
  'localtime', 'timezone', 'mime.types', 'inputrc', 'terminfo', 'gitconfig', 'os-release',
];
const ROOT_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

function rootDirArgs(): string[] {
  const args: string[] = [];
  for (const name of ROOT_DIRS) {
    const at = `/${name}`;
    if (!existsSync(at)) continue;
    const info = lstatSync(at);
    if (info.isSymbolicLink()) args.push('--symlink', readlinkSync(at), at);
    else args.push('--ro-bind', at, at);
  }
  return args;
}

/** Where node lives, when it is not under /usr (nvm, /opt): its install prefix, read-only. */
function nodePrefix(): string[] {
  const real = realpathSync(process.execPath);
  if (real.startsWith('/usr/') || real.startsWith('/bin/')) return [];
  return [path.dirname(path.dirname(real))];
}

function bwrapArgs(plan: LaunchPlan): string[] {
  const args = ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup-try'];
  if (process.getuid?.() === 0) args.push('--cap-drop', 'ALL');
  args.push('--ro-bind', '/usr', '/usr', ...rootDirArgs());
  for (const name of ETC_FILES) args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/run');
  for (const p of [...nodePrefix(), ...plan.readOnly]) args.push('--ro-bind', p, p);
  // After the tmpfs mounts, so a workspace under /tmp is the real directory.
  args.push('--bind', plan.workspace, plan.workspace);
  for (const bind of plan.binds) args.push(bind.readOnly ? '--ro-bind' : '--bind', bind.path, bind.path);
  if (plan.proxySocket) args.push('--bind', plan.proxySocket, PROXY_SOCKET_INSIDE);
  args.push('--chdir', plan.workspace, '--', process.execPath, plan.hostEntry);
  return args;
}

/** iproute2's `ip`, usually in an sbin dir that PATH may lack; `true` (a no-op) without it. */
function ipCommand(): string {
  return findExecutable('ip', `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`) ?? 'true';
}

/** The command line that starts the host at the given isolation level. */
export function buildLaunch(plan: LaunchPlan): Launch {
  switch (plan.level) {
    case 'bwrap':
      return { command: findExecutable('bwrap') ?? 'bwrap', args: bwrapArgs(plan), cwd: plan.workspace };
    case 'namespaces':
      // sh as pid 1 of the new namespace reaps orphaned processes (node would leave them as
      // zombies). A new network namespace starts with loopback down, and the credential
      // proxy's forwarder listens on it: bring it up first (bwrap does this itself).
      return {
        command: findExecutable('unshare') ?? 'unshare',
        args: [...unshareFlags(), '--', '/bin/sh', '-c', '"$2" link set lo up 2>/dev/null; exec 3<&0; "$0" "$1" <&3 3<&- & wait $!', process.execPath, plan.hostEntry, ipCommand()],
        cwd: plan.workspace,
      };
    case 'none':
      return { command: process.execPath, args: [plan.hostEntry], cwd: plan.workspace };
  }
}
