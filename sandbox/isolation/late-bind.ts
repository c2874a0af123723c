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
 * no binding for these calls, so a perl process makes them (perl is also what the namespaces
 * level uses to reach syscalls); it binds a sandbox before any of the session's code runs in it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
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
/** Equal for two ops that mount the same thing at the same place; a tmpfs's size is compared apart. */
const opKey = (op: MountOp) => (op.kind === 'tmpfs' ? `tmpfs\0${op.dst}` : JSON.stringify(op));

/**
 * What a sandbox started with `base` needs so that its tree is the one `full` gives a cold
 * sandbox: every op of `full` that `base` lacks, in `full`'s order, and every op of `base`
 * that came later in `full` and overlaps one of those (mounted again on top, as cold order
 * has it, so the workspace never covers a read-only install path it holds, and so on).
 * Null when the two cannot be reconciled (a kind of mount that cannot come late, or a
 * mount `base` has and `full` has not).
 */
export function lateBindPlan(base: MountOp[], full: MountOp[]): LateBind | null {
  // The ops of `base` not matched yet, by key, first one first (as a search in order would find them).
  const unused = new Map<string, MountOp[]>();
  for (const op of base) {
    const key = opKey(op);
    const same = unused.get(key);
    if (same) same.push(op);
    else unused.set(key, [op]);
  }
  let left = base.length;
  const ops: MountOp[] = [];
  const resize: LateBind['resize'] = [];
  const lateDsts: string[] = [];
  for (const op of full) {
    const had = unused.get(opKey(op))?.shift();
    if (!had) {
      if (!['bind', 'ro-bind', 'mask', 'tmpfs', 'remount-ro'].includes(op.kind)) return null;
      ops.push(op);
      lateDsts.push(dstOf(op)!);
      continue;
    }
    left--;
    if (had.kind === 'tmpfs' && op.kind === 'tmpfs' && had.size !== op.size) {
      if (op.size === undefined) return null;
      resize.push({ dst: op.dst, bytes: op.size });
    }
    const dst = dstOf(op);
    if (dst !== null && lateDsts.some((late) => overlaps(dst, late))) {
      if (!['bind', 'ro-bind', 'mask', 'tmpfs', 'remount-ro'].includes(op.kind)) return null;
      ops.push(op);
    }
  }
  return left === 0 ? { ops, resize } : null;
}

// Numbers of the calls used: the mount API's are the same on every architecture.
const SETNS: Record<string, number> = { x64: 308, arm64: 268 };
const CLOSE: Record<string, number> = { x64: 3, arm64: 57 };

/** Whether this daemon can bind started sandboxes late (root, perl, a known architecture). */
export function lateBindSupport(): Check {
  if (process.getuid?.() !== 0) return { ok: false, detail: 'the daemon is not root: mounting a workspace into a started sandbox needs CAP_SYS_ADMIN outside it' };
  if (SETNS[process.arch] === undefined) return { ok: false, detail: `no syscall table for ${process.arch}` };
  if (!perlPath()) return { ok: false, detail: 'perl not found (it makes the mount calls node has no binding for)' };
  return { ok: true, detail: 'root, perl and the new mount API (open_tree, mount_setattr, move_mount)' };
}

const perlPath = () => findExecutable('perl', `${process.env.PATH ?? ''}:/usr/bin:/bin`);

/**
 * The binder: one perl process for the daemon, reading requests ("pid\0mnt-ns-inode\0step...",
 * ended by "\0\0") and answering "ok", "gone" or "error ..." a line each. Per request, in the
 * daemon's mount namespace: a detached, flagged copy of each source; then setns into the
 * sandbox's (opened by pid, refused unless its inode is the one bubblewrap reported, so a
 * reused pid cannot redirect it): mount points made (never through a symlink), each copy
 * moved to its place, remounts and tmpfs sizes; then setns back to its own namespace, and
 * the sandbox's processes (its pid 1's process group: bubblewrap made it a session) raised
 * from the pool's low priority to the usual one.
 */
const SCRIPT = String.raw`
use strict; use warnings;
my ($OPEN_TREE, $MOVE_MOUNT, $FSOPEN, $FSCONFIG, $FSMOUNT, $FSPICK, $MOUNT_SETATTR) = (428, 429, 430, 431, 432, 433, 442);
my ($SETNS, $CLOSE) = (shift @ARGV, shift @ARGV);
my ($RO, $NOSUID, $NODEV) = (1, 2, 4);
open(my $home, '<', '/proc/self/ns/mnt') or die "own mount namespace: $!\n";
$| = 1;
my @fds;
sub fail { die "$_[0]: $!\n" }
sub fd { push @fds, $_[0]; return $_[0] }
sub attr { my ($fd, $path, $flags, $at) = @_; my $a = pack('QQQQ', $flags, 0, 0, 0); syscall($MOUNT_SETATTR, $fd, $path, $at, $a, length $a) == 0 or fail("mount_setattr $_[1]"); }
sub copy_of { my ($src, $flags) = @_; my $fd = syscall($OPEN_TREE, -100, $src, 1 | 0x8000 | 0x80000); $fd >= 0 or fail("open_tree $src"); fd($fd); my $e = ''; attr($fd, $e, $flags, 0x1000 | 0x8000); return $fd; }
sub tmpfs { my ($type, $key, $mode, $source) = ('tmpfs', 'mode', '0755', 'source'); my $fs = syscall($FSOPEN, $type, 1); $fs >= 0 or fail('fsopen tmpfs'); fd($fs);
  syscall($FSCONFIG, $fs, 1, $source, $type, 0) == 0 or fail('fsconfig source');
  syscall($FSCONFIG, $fs, 1, $key, $mode, 0) == 0 or fail('fsconfig mode'); syscall($FSCONFIG, $fs, 6, 0, 0, 0) == 0 or fail('fsconfig create');
  my $fd = syscall($FSMOUNT, $fs, 1, $NOSUID | $NODEV); $fd >= 0 or fail('fsmount'); return fd($fd); }
sub mkpath { my $p = ''; for my $part (grep { length } split m{/}, $_[0]) { $p .= "/$part"; fail("symlink at $p") if -l $p; next if -d $p; mkdir $p or -d $p or fail("mkdir $p"); } }
sub mountpoint { my ($dst, $dir) = @_; if ($dir) { mkpath($dst); return } (my $up = $dst) =~ s{/[^/]*$}{}; mkpath($up); fail("symlink at $dst") if -l $dst;
  return if -e $dst; open(my $f, '>', $dst) or fail("create $dst"); close $f; }
sub steps {
  my @steps;
  while (@_) {
    my $kind = shift;
    if ($kind eq 'bind' || $kind eq 'ro-bind') { my ($src, $dst) = splice(@_, 0, 2); push @steps, ['move', copy_of($src, $NOSUID | $NODEV | ($kind eq 'ro-bind' ? $RO : 0)), $dst, -d $src]; }
    elsif ($kind eq 'mask') { my $null = '/dev/null'; push @steps, ['move', copy_of($null, $RO | $NOSUID | $NODEV), shift, 0]; }
    elsif ($kind eq 'tmpfs') { push @steps, ['move', tmpfs(), shift, 1]; }
    elsif ($kind eq 'remount-ro') { push @steps, ['ro', shift]; }
    elsif ($kind eq 'resize') { push @steps, ['resize', splice(@_, 0, 2)]; }
    else { die "unknown step $kind\n" }
  }
  return @steps;
}
sub apply {
  for my $s (@_) {
    my ($what, @a) = @$s;
    if ($what eq 'move') { my ($fd, $dst, $dir) = @a; mountpoint($dst, $dir); my $e = ''; syscall($MOVE_MOUNT, $fd, $e, -100, $dst, 4) == 0 or fail("move_mount $dst"); }
    elsif ($what eq 'ro') { my $dst = $a[0]; attr(-100, $dst, $RO | $NOSUID | $NODEV, 0x100); }
    else { my ($dst, $bytes) = @a; my $fd = syscall($FSPICK, -100, $dst, 1 | 2); $fd >= 0 or fail("fspick $dst"); fd($fd); my $key = 'size';
      syscall($FSCONFIG, $fd, 1, $key, $bytes, 0) == 0 or fail("fsconfig size $dst"); syscall($FSCONFIG, $fd, 7, 0, 0, 0) == 0 or fail("reconfigure $dst"); }
  }
}
sub bind_one {
  my ($pid, $ino, @args) = @_;
  my @steps = steps(@args);
  open(my $ns, '<', "/proc/$pid/ns/mnt") or die "gone\n";
  (stat $ns)[1] == $ino or die "gone\n";
  syscall($SETNS, fileno($ns), 0x20000) == 0 or fail('setns');
  my $ok = eval { chdir '/' or fail('chdir'); apply(@steps); 1 };
  my $error = $@;
  syscall($SETNS, fileno($home), 0x20000) == 0 or die "setns back: $!\n";
  chdir '/';
  die $error unless $ok;
  # Started at the lowest priority (a refill must not slow the sessions running): now a session's, every thread of it.
  setpriority(1, $pid, 0) or fail('setpriority');
}
local $/ = "\0\0";
while (my $request = <STDIN>) {
  chomp $request;
  my $ok = eval { bind_one(split /\0/, $request, -1); 1 };
  my $error = $@;
  syscall($CLOSE, $_) for splice(@fds);
  if ($ok) { print "ok\n" } elsif ($error eq "gone\n") { print "gone\n" } else { $error =~ s/\n/ /g; print "error $error\n" }
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

/** The sandbox went away before it could be bound. */
export class SandboxGone extends Error {}

/** Where to bind: the sandbox's pid 1 (outside numbering) and its mount namespace's inode, as bubblewrap reported them. */
export interface BindTarget {
  pid: number;
  mntNamespace: number;
}

/** Binds started sandboxes through one long-lived perl process (started on first use, again if it dies). */
export class LateBinder {
  private child: ChildProcessWithoutNullStreams | null = null;

  bind(target: BindTarget, plan: LateBind): Promise<void> {
    const request = [String(target.pid), String(target.mntNamespace), ...args(plan)];
    if (request.some((field) => field === '' || field.includes('\0'))) return Promise.reject(new Error('a path with a NUL byte cannot be bound'));
    const child = (this.child ??= this.start());
    return new Promise((resolve, reject) => {
      (child as Helper).pending.push({ resolve, reject });
      child.stdin.write(`${request.join('\0')}\0\0`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn(perlPath() ?? 'perl', ['-e', SCRIPT, String(SETNS[process.arch]), String(CLOSE[process.arch])], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin' },
    }) as Helper;
    child.pending = [];
    let buffered = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        const waiter = child.pending.shift();
        if (line === 'ok') waiter?.resolve();
        else if (line === 'gone') waiter?.reject(new SandboxGone('the sandbox exited before it was bound'));
        else waiter?.reject(new Error(`binding the workspace failed: ${line.replace(/^error /, '')}`));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
    child.stdin.on('error', () => undefined); // its exit reports it
    const failAll = (why: string) => {
      if (this.child === child) this.child = null;
      for (const waiter of child.pending.splice(0)) waiter.reject(new Error(`the binder ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    };
    child.on('error', (error) => failAll(`did not start (${error.message})`));
    child.on('exit', (code, signal) => failAll(`exited with ${code ?? signal}`));
    return child;
  }

  close(): void {
    this.child?.stdin.end();
    this.child = null;
  }
}

type Helper = ChildProcessWithoutNullStreams & { pending: Array<{ resolve(): void; reject(error: Error): void }> };
