/**
 * Binding a started sandbox to a workspace: bubblewrap fixes its mounts when it starts, so a
 * pooled sandbox is started with everything that does not depend on the session (system
 * dirs, /proc, /dev, tmpfs, agentd's install, its limit counters), and the rest (the
 * workspace, extra binds, masks over what they would show, the proxy socket) is mounted into
 * its mount namespace afterwards, at the same paths a cold sandbox has them.
 *
 * How: the new mount API. A detached copy of each source is made in the daemon's namespace
 * (open_tree), given bubblewrap's flags (mount_setattr: nosuid, nodev, ro), then, after
 * setns into the sandbox's mount namespace, moved to its place there (move_mount). That
 * needs CAP_SYS_ADMIN over the sandbox's namespaces and in the daemon's own: root. Node has
 * no binding for these calls, so a short perl script makes them (perl is also what the
 * namespaces level uses to reach syscalls); it runs before any of the session's code.
 */
import { spawn } from 'node:child_process';
import type { Check } from '../types.js';
import type { MountOp } from './mounts.js';
import { findExecutable } from './which.js';

/** What a started sandbox still needs: mounts, in order, then tmpfs sizes to change (the session's limits). */
export interface LateBind {
  ops: MountOp[];
  resize: { dst: string; bytes: number }[];
}

const within = (child: string, parent: string) => child === parent || child.startsWith(parent === '/' ? '/' : `${parent}/`);
const overlaps = (a: string, b: string) => within(a, b) || within(b, a);
const dstOf = (op: MountOp): string | null => ('dst' in op ? op.dst : null);
/** Two ops that mount the same thing at the same place; a tmpfs's size is compared apart. */
const sameOp = (a: MountOp, b: MountOp) => {
  if (a.kind === 'tmpfs' && b.kind === 'tmpfs') return a.dst === b.dst;
  return JSON.stringify(a) === JSON.stringify(b);
};

/**
 * What a sandbox started with `base` needs so that its tree is the one `full` gives a cold
 * sandbox: every op of `full` that `base` lacks, in `full`'s order, and every op of `base`
 * that came later in `full` and overlaps one of those (mounted again on top, as cold order
 * has it, so the workspace never covers a read-only install path it holds, and so on).
 * Null when the two cannot be reconciled (a kind of mount that cannot come late, or a
 * mount `base` has and `full` has not).
 */
export function lateBindPlan(base: MountOp[], full: MountOp[]): LateBind | null {
  const unused = [...base];
  const ops: MountOp[] = [];
  const resize: LateBind['resize'] = [];
  const lateDsts: string[] = [];
  for (const op of full) {
    const at = unused.findIndex((b) => sameOp(b, op));
    if (at === -1) {
      if (!['bind', 'ro-bind', 'mask', 'tmpfs', 'remount-ro'].includes(op.kind)) return null;
      ops.push(op);
      lateDsts.push(dstOf(op)!);
      continue;
    }
    const [had] = unused.splice(at, 1);
    if (had!.kind === 'tmpfs' && op.kind === 'tmpfs' && had!.size !== op.size) {
      if (op.size === undefined) return null;
      resize.push({ dst: op.dst, bytes: op.size });
    }
    const dst = dstOf(op);
    if (dst !== null && lateDsts.some((late) => overlaps(dst, late))) {
      if (!['bind', 'ro-bind', 'mask', 'tmpfs', 'remount-ro'].includes(op.kind)) return null;
      ops.push(op);
    }
  }
  return unused.length === 0 ? { ops, resize } : null;
}

// Numbers of the calls used: the mount API's are the same on every architecture.
const SETNS: Record<string, number> = { x64: 308, arm64: 268 };

/** Whether this daemon can bind started sandboxes late (root, perl, a known architecture). */
export function lateBindSupport(): Check {
  if (process.getuid?.() !== 0) return { ok: false, detail: 'the daemon is not root: mounting a workspace into a started sandbox needs CAP_SYS_ADMIN outside it' };
  if (SETNS[process.arch] === undefined) return { ok: false, detail: `no syscall table for ${process.arch}` };
  if (!findExecutable('perl', `${process.env.PATH ?? ''}:/usr/bin:/bin`)) return { ok: false, detail: 'perl not found (it makes the mount calls node has no binding for)' };
  return { ok: true, detail: 'root, perl and the new mount API (open_tree, mount_setattr, move_mount)' };
}

/**
 * Phase one in the daemon's mount namespace: a detached, flagged copy of each source. Phase
 * two after setns into the sandbox's (fd 3): mount points made (never through a symlink) and
 * each copy moved to its place, then remounts and tmpfs sizes.
 */
const SCRIPT = String.raw`
use strict; use warnings;
my ($OPEN_TREE, $MOVE_MOUNT, $FSOPEN, $FSCONFIG, $FSMOUNT, $FSPICK, $MOUNT_SETATTR, $SETNS) = (428, 429, 430, 431, 432, 433, 442, shift @ARGV);
my ($RO, $NOSUID, $NODEV) = (1, 2, 4);
sub fail { die "$_[0]: $!\n" }
sub attr { my ($fd, $path, $flags, $at) = @_; my $a = pack('QQQQ', $flags, 0, 0, 0); syscall($MOUNT_SETATTR, $fd, $path, $at, $a, length $a) == 0 or fail("mount_setattr $_[1]"); }
sub copy_of { my ($src, $flags) = @_; my $fd = syscall($OPEN_TREE, -100, $src, 1 | 0x8000 | 0x80000); $fd >= 0 or fail("open_tree $src"); my $e = ''; attr($fd, $e, $flags, 0x1000 | 0x8000); return $fd; }
sub tmpfs { my ($type, $key, $mode, $source) = ('tmpfs', 'mode', '0755', 'source'); my $fs = syscall($FSOPEN, $type, 1); $fs >= 0 or fail('fsopen tmpfs');
  syscall($FSCONFIG, $fs, 1, $source, $type, 0) == 0 or fail('fsconfig source');
  syscall($FSCONFIG, $fs, 1, $key, $mode, 0) == 0 or fail('fsconfig mode'); syscall($FSCONFIG, $fs, 6, 0, 0, 0) == 0 or fail('fsconfig create');
  my $fd = syscall($FSMOUNT, $fs, 1, $NOSUID | $NODEV); $fd >= 0 or fail('fsmount'); return $fd; }
sub mkpath { my $p = ''; for my $part (grep { length } split m{/}, $_[0]) { $p .= "/$part"; fail("symlink at $p") if -l $p; next if -d $p; mkdir $p or -d $p or fail("mkdir $p"); } }
sub mountpoint { my ($dst, $dir) = @_; if ($dir) { mkpath($dst); return } (my $up = $dst) =~ s{/[^/]*$}{}; mkpath($up); fail("symlink at $dst") if -l $dst;
  return if -e $dst; open(my $f, '>', $dst) or fail("create $dst"); close $f; }
my @steps;
while (@ARGV) {
  my $kind = shift @ARGV;
  if ($kind eq 'bind' || $kind eq 'ro-bind') { my ($src, $dst) = splice(@ARGV, 0, 2); push @steps, ['move', copy_of($src, $NOSUID | $NODEV | ($kind eq 'ro-bind' ? $RO : 0)), $dst, -d $src]; }
  elsif ($kind eq 'mask') { my $null = '/dev/null'; push @steps, ['move', copy_of($null, $RO | $NOSUID | $NODEV), shift @ARGV, 0]; }
  elsif ($kind eq 'tmpfs') { push @steps, ['move', tmpfs(), shift @ARGV, 1]; }
  elsif ($kind eq 'remount-ro') { push @steps, ['ro', shift @ARGV]; }
  elsif ($kind eq 'resize') { push @steps, ['resize', splice(@ARGV, 0, 2)]; }
  else { die "unknown step $kind\n" }
}
syscall($SETNS, 3, 0x20000) == 0 or fail('setns');
chdir '/' or fail('chdir');
for my $s (@steps) {
  my ($what, @a) = @$s;
  if ($what eq 'move') { my ($fd, $dst, $dir) = @a; mountpoint($dst, $dir); my $e = ''; syscall($MOVE_MOUNT, $fd, $e, -100, $dst, 4) == 0 or fail("move_mount $dst"); }
  elsif ($what eq 'ro') { my $dst = $a[0]; attr(-100, $dst, $RO | $NOSUID | $NODEV, 0x100); }
  else { my ($dst, $bytes) = @a; my $fd = syscall($FSPICK, -100, $dst, 1 | 2); $fd >= 0 or fail("fspick $dst"); my ($key, $none) = ('size', '');
    syscall($FSCONFIG, $fd, 1, $key, $bytes, 0) == 0 or fail("fsconfig size $dst"); syscall($FSCONFIG, $fd, 7, 0, 0, 0) == 0 or fail("reconfigure $dst"); }
}
`;

function args(plan: LateBind): string[] {
  const out: string[] = [];
  for (const op of plan.ops) {
    switch (op.kind) {
      case 'bind':
      case 'ro-bind':
        out.push(op.kind, op.src, op.dst);
        break;
      case 'mask':
      case 'tmpfs':
      case 'remount-ro':
        out.push(op.kind, op.dst);
        break;
      default:
        throw new Error(`a ${op.kind} mount cannot be made late`);
    }
  }
  for (const r of plan.resize) out.push('resize', r.dst, String(r.bytes));
  return out;
}

/** Performs `plan` in the mount namespace open at `nsFd` (a /proc/PID/ns/mnt the caller holds). */
export function performLateBind(nsFd: number, plan: LateBind): Promise<void> {
  const perl = findExecutable('perl', `${process.env.PATH ?? ''}:/usr/bin:/bin`) ?? 'perl';
  return new Promise((resolve, reject) => {
    const child = spawn(perl, ['-e', SCRIPT, String(SETNS[process.arch]), ...args(plan)], { stdio: ['ignore', 'ignore', 'pipe', nsFd], env: { PATH: '/usr/bin:/bin' } });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`binding the workspace failed: ${stderr.trim() || `perl exited with ${code ?? signal}`}`))));
  });
}
