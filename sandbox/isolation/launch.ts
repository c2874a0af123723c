import path from 'node:path';
import type { IsolationLevel } from '../types.js';
import { mountOf, mountTable, type MountEntry } from './mountinfo.js';
import { findExecutable } from './which.js';
import { bwrapMountArgs, mountOps, type FilesystemPlan, type MountOp } from './mounts.js';

export interface Launch {
  command: string;
  args: string[];
  cwd: string;
  /** Bytes to hand the launcher on fd 3 (bubblewrap reads its seccomp program there). */
  fd3?: Buffer;
  /** bubblewrap writes its sandbox's pid and namespaces as JSON on fd 4 (a pooled sandbox's, to bind it later). */
  infoFd?: boolean;
  /**
   * The launcher's child is the sandbox's pid 1 (bwrap and namespaces levels): the kernel ends
   * everything in the sandbox before pid 1 is gone, while the launcher can end first.
   */
  pidNamespace?: boolean;
}

export interface LaunchPlan extends FilesystemPlan {
  level: IsolationLevel;
  /** The program to run inside, absolute path first. */
  command: string[];
  /** Where it starts, inside and (the launcher) outside: the workspace, or / for a pooled sandbox. */
  cwd: string;
  /** bwrap level: report the sandbox's pid and namespaces on fd 4. */
  infoFd?: boolean;
  /** cgroup.procs files the launcher joins before it starts anything (empty without cgroups). */
  cgroupProcs: string[];
  /** Set inside, once the sandbox's user namespace exists (see ../limits). */
  rlimits?: { nproc?: number; dataBytes?: number };
  /** The seccomp program (bwrap level). */
  seccomp: Buffer | null;
  /** `namespaces` level: an empty directory outside, where the sandbox's root is assembled. */
  stagingDir?: string;
}

/** PATH, and the sbin dirs it may lack (mount, pivot_root, ip live there on some systems). */
const SBIN_PATH = () => `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const tool = (name: string) => findExecutable(name, SBIN_PATH()) ?? name;

/** The uid and gid inside: the daemon's own, or 1000 when it runs as root (never 0 inside). */
export function insideIds(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid };
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function rlimitPrefix(rlimits: LaunchPlan['rlimits']): string[] {
  if (!rlimits) return [];
  const flags = [
    ...(rlimits.nproc !== undefined ? [`--nproc=${rlimits.nproc}:${rlimits.nproc}`] : []),
    ...(rlimits.dataBytes !== undefined ? [`--data=${rlimits.dataBytes}:${rlimits.dataBytes}`] : []),
  ];
  return flags.length ? [tool('prlimit'), ...flags, '--'] : [];
}

/** Drops every capability (bounding and ambient sets too) and sets no_new_privs; setpriv(1). */
function dropPrivileges(): string[] {
  return [tool('setpriv'), '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'];
}

function bwrapArgs(plan: LaunchPlan, inner: string[]): string[] {
  const { uid, gid } = insideIds();
  const args = [
    '--unshare-user', '--uid', String(uid), '--gid', String(gid), '--disable-userns',
    '--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup-try',
  ];
  if (process.getuid?.() === 0) args.push('--cap-drop', 'ALL');
  args.push(...bwrapMountArgs(mountOps(plan)));
  if (plan.seccomp) args.push('--seccomp', '3');
  if (plan.infoFd) args.push('--info-fd', '4');
  args.push('--chdir', plan.cwd, '--', ...inner);
  return args;
}

/**
 * A bind's remount keeps the source mount's noexec: in a user namespace, a flag the mount was
 * given outside is locked, and a remount without it fails.
 */
function bindFlags(table: MountEntry[], src: string, readOnly: boolean): string {
  const noexec = mountOf(table, src)?.options.includes('noexec');
  return `nosuid,nodev${readOnly ? ',ro' : ''}${noexec ? ',noexec' : ''}`;
}

/** One mount operation as shell, against the new root "$R" (see namespacesScript). */
function shellOp(op: MountOp, table: MountEntry[]): string {
  switch (op.kind) {
    case 'ro-bind':
      return `mnt_bind ${bindFlags(table, op.src, true)} ${quote(op.src)} ${quote(op.dst)}`;
    case 'bind':
      return `mnt_bind ${bindFlags(table, op.src, false)} ${quote(op.src)} ${quote(op.dst)}`;
    case 'tmpfs':
      return `mkdir -p "$R"${quote(op.dst)}; mount -t tmpfs -o mode=0755,nosuid,nodev${op.size !== undefined ? `,size=${op.size}` : ''} agentd "$R"${quote(op.dst)}`;
    case 'proc':
      // Further user namespaces are refused here (as bwrap --disable-userns does): its limit is 0.
      return 'mkdir -p "$R/proc"; mount -t proc -o nosuid,nodev,noexec proc "$R/proc"; echo 0 > "$R/proc/sys/user/max_user_namespaces"';
    case 'dev':
      return 'mnt_dev';
    case 'symlink':
      return `mkdir -p "$R"${quote(path.dirname(op.dst))}; ln -s ${quote(op.target)} "$R"${quote(op.dst)}`;
    case 'mask':
      return `mnt_bind ${bindFlags(table, '/dev/null', true)} /dev/null ${quote(op.dst)}`;
    case 'remount-ro':
      return `mount -o remount,bind,ro,nosuid,nodev "$R"${quote(op.dst)}`;
  }
}

/**
 * The `namespaces` level without bubblewrap: run as root of a fresh user namespace (mapped to
 * the daemon's uid, so no more than the daemon may), assemble the same tree as bwrap gets in
 * a tmpfs with mount(8), pivot_root into it, then drop to an unprivileged uid with no
 * capabilities and no_new_privs. What it lacks against bwrap: the seccomp filter.
 */
function namespacesScript(plan: LaunchPlan): string {
  const keyctl = process.arch === 'x64' ? 250 : process.arch === 'arm64' ? 219 : undefined;
  const perl = findExecutable('perl', SBIN_PATH());
  const ip = findExecutable('ip', SBIN_PATH());
  const table = mountTable();
  return [
    'set -eu',
    `R=${quote(plan.stagingDir!)}`,
    // mnt_bind FLAGS SRC DST: the mount point is made to match the source (dir, or empty file).
    'mnt_bind() { local d="$R$3"; if [ -d "$2" ]; then mkdir -p "$d"; else mkdir -p "${d%/*}"; [ -e "$d" ] || : > "$d"; fi; ' +
      'mount --bind "$2" "$d"; mount -o "remount,bind,$1" "$d"; }',
    'mnt_dev() { mkdir -p "$R/dev"; mount -t tmpfs -o mode=0755,nosuid agentd "$R/dev"; ' +
      'for n in null zero full random urandom tty; do : > "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done; ' +
      'mkdir "$R/dev/pts"; mount -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec devpts "$R/dev/pts"; ' +
      'ln -s pts/ptmx "$R/dev/ptmx"; ln -s /proc/self/fd "$R/dev/fd"; for i in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${i%%:*}" "$R/dev/${i#*:}"; done; }',
    'mount --make-rprivate /',
    'mount -t tmpfs -o mode=0755,nosuid,nodev agentd-root "$R"',
    ...mountOps(plan).map((op) => shellOp(op, table)),
    ...(ip ? [`${quote(ip)} link set lo up`] : []),
    'cd "$R"; mkdir .agentd-old-root; pivot_root . .agentd-old-root; umount -i -n -l /.agentd-old-root; rmdir /.agentd-old-root',
    `cd ${quote(plan.cwd)}`,
    // A new, empty session keyring: the daemon's would otherwise be readable by possession.
    ...(perl && keyctl !== undefined ? [`set -- ${quote(perl)} -e 'syscall(${keyctl}, 1, 0) >= 0 or die "keyctl: $!\\n"; exec @ARGV or die "exec: $!\\n"' "$@"`] : []),
    `exec ${dropPrivileges().map(quote).join(' ')} "$@"`,
  ].join('\n');
}

/** pid 1 of the sandbox: reaps orphans, runs the command with the stdin it was given. */
const REAPER = ['/bin/sh', '-c', 'exec 3<&0; "$@" <&3 3<&- & wait $!', 'agentd-init'];
/** Joins the cgroups named before `--`, then becomes the rest of its arguments. */
const CGROUP_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

/**
 * `launch` at the lowest CPU priority (nice 19, inherited by all it starts): a pooled sandbox
 * starts while sessions run, and must not take their CPU; binding it raises it (late-bind.ts).
 * As it is where nice(1) is missing.
 */
export function atLowestPriority(launch: Launch): Launch {
  const nice = findExecutable('nice', SBIN_PATH());
  return nice ? { ...launch, command: nice, args: ['-n', '19', launch.command, ...launch.args] } : launch;
}

/** The command line that starts `plan.command` at the planned isolation level. */
export function buildLaunch(plan: LaunchPlan): Launch {
  const inner = [...rlimitPrefix(plan.rlimits), ...plan.command];
  let launch: Launch;
  switch (plan.level) {
    case 'bwrap':
      launch = { command: tool('bwrap'), args: bwrapArgs(plan, inner), cwd: plan.cwd, pidNamespace: true, ...(plan.seccomp ? { fd3: plan.seccomp } : {}), ...(plan.infoFd ? { infoFd: true } : {}) };
      break;
    case 'namespaces': {
      const { uid, gid } = insideIds();
      launch = {
        command: tool('unshare'),
        args: [
          '--user', `--map-user=${uid}`, `--map-group=${gid}`, '--keep-caps',
          '--pid', '--fork', '--kill-child', '--mount', '--net', '--ipc', '--uts', '--cgroup',
          '--', tool('bash'), '-c', namespacesScript(plan), 'agentd-sandbox-setup', ...REAPER, ...inner,
        ],
        cwd: plan.cwd,
        pidNamespace: true,
      };
      break;
    }
    case 'none':
      launch = { command: inner[0]!, args: inner.slice(1), cwd: plan.cwd };
      break;
  }
  if (plan.cgroupProcs.length === 0) return launch;
  return { ...launch, command: '/bin/sh', args: ['-c', CGROUP_JOIN, 'agentd-cgroup-join', ...plan.cgroupProcs, '--', launch.command, ...launch.args] };
}
