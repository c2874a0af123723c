/**
 * What the sandbox's filesystem holds, as one list of mount operations. bubblewrap gets it
 * as arguments; the `namespaces` level performs the same list with mount(8) (launch.ts), so
 * both levels show the sandbox the same tree: system dirs read-only, a private /tmp, /run
 * and /dev, a fresh /proc with its kernel knobs read-only, the workspace read-write, and
 * the hidden paths (the daemon's data dir) masked whatever the workspace holds.
 */
import { existsSync, lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

export type MountOp =
  | { kind: 'ro-bind'; src: string; dst: string }
  | { kind: 'bind'; src: string; dst: string }
  /** `size` in bytes; without it the kernel's default (half the machine's memory). */
  | { kind: 'tmpfs'; dst: string; size?: number }
  | { kind: 'proc' }
  | { kind: 'dev' }
  | { kind: 'symlink'; target: string; dst: string }
  /** /dev/null over a file (or socket), so it reads empty and cannot be written or connected to. */
  | { kind: 'mask'; dst: string }
  | { kind: 'remount-ro'; dst: string };

export interface FilesystemPlan {
  /** Absent for a pooled sandbox, which gets its workspace when it is bound (late-bind.ts). */
  workspace?: string;
  /** Install paths the host needs (compiled tree, node_modules, package.json), read-only. */
  readOnly: string[];
  binds: { path: string; readOnly: boolean }[];
  /** Paths never visible inside, whatever is bound around them. */
  hide: string[];
  /** Extra files bound inside at the given paths (the proxy socket read-write, limit counters read-only). */
  extras: { src: string; dst: string; readOnly: boolean }[];
  /**
   * The memory limit the writable tmpfs (/tmp, /run, /dev/shm) share (see systemOps): their
   * pages are memory, which a cgroup counts but a per-process rlimit does not.
   */
  tmpfsBytes?: number;
}

// Only what programs need from /etc: no shadow, no ssh keys, no machine secrets.
const ETC_FILES = [
  'passwd', 'group', 'hosts', 'host.conf', 'resolv.conf', 'nsswitch.conf', 'gai.conf', 'protocols', 'services',
  'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'ssl', 'ca-certificates', 'ca-certificates.conf', 'pki', 'alternatives',
  'localtime', 'timezone', 'mime.types', 'inputrc', 'terminfo', 'gitconfig', 'os-release',
];
const ROOT_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/**
 * /proc entries that change the whole machine (sysctls, IRQ affinity, sysrq, PSI triggers):
 * read-only. The sandbox's uid maps to the daemon's outside, so as root it owns these files.
 */
const PROC_READ_ONLY = ['sys', 'sysrq-trigger', 'irq', 'bus', 'fs', 'acpi', 'scsi', 'asound', 'driver', 'pressure', 'tty'];
/** /proc files that tell about the host (other processes, kernel memory layout, keys): empty. */
const PROC_MASKED = [
  'kcore', 'kmsg', 'keys', 'key-users', 'timer_list', 'timer_stats', 'sched_debug', 'latency_stats', 'slabinfo',
  'kpagecount', 'kpageflags', 'kpagecgroup', 'vmallocinfo', 'pagetypeinfo', 'mtrr', 'kallsyms', 'iomem', 'ioports',
];

const within = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);

/** Where node lives, when it is not under /usr (nvm, /opt): its install prefix, read-only. */
function nodePrefix(): string[] {
  const real = realpathSync(process.execPath);
  if (real.startsWith('/usr/') || real.startsWith('/bin/')) return [];
  return [path.dirname(path.dirname(real))];
}

let procCovers: MountOp[] | undefined;
/** What covers /proc's knobs and host files: which exist is the kernel's to say, so it is looked up once. */
function procOps(): MountOp[] {
  procCovers ??= [
    ...PROC_READ_ONLY.filter((name) => existsSync(`/proc/${name}`)).map((name): MountOp => ({ kind: 'ro-bind', src: `/proc/${name}`, dst: `/proc/${name}` })),
    ...PROC_MASKED.filter((name) => existsSync(`/proc/${name}`)).map((name): MountOp => ({ kind: 'mask', dst: `/proc/${name}` })),
  ];
  return procCovers;
}

function systemOps(tmpfsBytes: number | undefined): MountOp[] {
  const ops: MountOp[] = [{ kind: 'ro-bind', src: '/usr', dst: '/usr' }];
  for (const name of ROOT_DIRS) {
    const at = `/${name}`;
    if (!existsSync(at)) continue;
    ops.push(lstatSync(at).isSymbolicLink() ? { kind: 'symlink', target: readlinkSync(at), dst: at } : { kind: 'ro-bind', src: at, dst: at });
  }
  for (const name of ETC_FILES) if (existsSync(`/etc/${name}`)) ops.push({ kind: 'ro-bind', src: `/etc/${name}`, dst: `/etc/${name}` });
  ops.push({ kind: 'proc' }, ...procOps());
  // Together the tmpfs hold at most half the memory limit (/tmp a quarter, /dev/shm and /run
  // an eighth each): their pages count against the sandbox's memory cgroup and killing a
  // process cannot free them, so filled tmpfs sized to the whole limit could leave the cgroup
  // in an OOM that nothing ends. Filled as they are, a write fails with ENOSPC instead.
  const share = (part: number) => (tmpfsBytes !== undefined ? { size: Math.floor(tmpfsBytes / part) } : {});
  ops.push({ kind: 'dev' }, { kind: 'tmpfs', dst: '/dev/shm', ...share(8) }, { kind: 'tmpfs', dst: '/tmp', ...share(4) }, { kind: 'tmpfs', dst: '/run', ...share(8) });
  return ops;
}

/** The mount operations, in order: later ones land on top of earlier ones. */
export function mountOps(plan: FilesystemPlan): MountOp[] {
  const ops = systemOps(plan.tmpfsBytes);
  const bound: MountOp[] = [
    ...nodePrefix().map((p): MountOp => ({ kind: 'ro-bind', src: p, dst: p })),
    ...(plan.workspace ? [{ kind: 'bind', src: plan.workspace, dst: plan.workspace } as const] : []),
    ...plan.binds.map((b): MountOp => ({ kind: b.readOnly ? 'ro-bind' : 'bind', src: b.path, dst: b.path })),
    // After the workspace: a workspace that holds agentd's own install cannot rewrite it.
    ...plan.readOnly.map((p): MountOp => ({ kind: 'ro-bind', src: p, dst: p })),
  ];
  ops.push(...bound);
  const sources = ops.flatMap((op) => (op.kind === 'bind' || op.kind === 'ro-bind' ? [op.src] : []));
  for (const hidden of plan.hide) {
    if (!existsSync(hidden)) continue;
    const real = realpathSync(hidden);
    // Only what some bind would show needs covering; everything else is not in the sandbox at all.
    if (!sources.some((src) => within(real, src))) continue;
    if (!statSync(real).isDirectory()) {
      ops.push({ kind: 'mask', dst: real });
      continue;
    }
    // What lives inside a hidden dir and is meant to be seen (a fork's workspace) is bound again on
    // top of the mask, before the mask turns read-only (its mount points are made in it).
    ops.push({ kind: 'tmpfs', dst: real });
    ops.push(...bound.filter((op) => 'dst' in op && within(op.dst, real) && op.dst !== real));
    ops.push({ kind: 'remount-ro', dst: real });
  }
  for (const extra of plan.extras) ops.push({ kind: extra.readOnly ? 'ro-bind' : 'bind', src: extra.src, dst: extra.dst });
  return ops;
}

/** The same list as bubblewrap arguments. */
export function bwrapMountArgs(ops: MountOp[]): string[] {
  return ops.flatMap((op): string[] => {
    switch (op.kind) {
      case 'ro-bind':
        return ['--ro-bind', op.src, op.dst];
      case 'bind':
        return ['--bind', op.src, op.dst];
      case 'tmpfs':
        return [...(op.size !== undefined ? ['--size', String(op.size)] : []), '--tmpfs', op.dst];
      case 'proc':
        return ['--proc', '/proc'];
      case 'dev':
        return ['--dev', '/dev'];
      case 'symlink':
        return ['--symlink', op.target, op.dst];
      case 'mask':
        return ['--ro-bind', '/dev/null', op.dst];
      case 'remount-ro':
        return ['--remount-ro', op.dst];
    }
  });
}
