/**
 * The sandbox's seccomp filter: a small classic-BPF program, generated here so that no
 * compiler or libseccomp is needed at install or run time, handed to bubblewrap's
 * `--seccomp FD`. Default allow; the calls below fail with EPERM (clone3 with ENOSYS, so
 * libc falls back to clone, whose flags the filter can read). What it denies and why:
 *
 * - namespaces and mounts: a process that can make a namespace or change a mount tree can
 *   take the sandbox's mount layout apart in a copy it owns (bwrap's --disable-userns and the
 *   missing capabilities stop this too; the filter is the second, independent lock);
 * - other processes' memory: ptrace, process_vm_*, pidfd_getfd;
 * - kernel keyrings: keyctl, add_key, request_key (a session keyring is inherited from the
 *   daemon; possession alone would let the sandbox read its keys);
 * - kernel attack surface a sandbox never needs: bpf, perf_event_open, userfaultfd, io_uring
 *   (which also creates sockets without socket(2)), and the administrative calls (modules,
 *   kexec, reboot, swap, syslog, acct, quotactl, ioperm/iopl, open_by_handle_at, ...);
 * - setuid and setgid bits (chmod family, and open/creat/mknod creating a file with them): the
 *   sandbox's files belong to the daemon's uid outside (root, for a root daemon), so such a
 *   file in the workspace would run as that uid for whoever starts it outside the sandbox.
 *   openat2 (whose mode sits in a struct) answers ENOSYS, so callers fall back to openat;
 * - socket families other than AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (EAFNOSUPPORT):
 *   AF_VSOCK reaches the hypervisor's host whatever the network namespace, AF_ALG and the
 *   rest are kernel attack surface. AF_UNIX stays allowed: the host needs it (the proxy
 *   socket, pipes to its children), the mount namespace exposes no socket but the workspace's
 *   own and the session's proxy socket, and abstract sockets belong to the sandbox's own
 *   network namespace.
 * Calls made through another architecture's entry (i386 on x86_64) or the x32 ABI are all
 * refused: their numbers differ, so the list above would not apply to them.
 */

interface ArchTable {
  auditArch: number;
  /** x86_64 also accepts x32 calls (nr | 0x40000000): refuse them all. */
  x32: boolean;
  nr: Record<string, number>;
}

const COMMON_NEW: Record<string, number> = {
  open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
  clone3: 435, pidfd_getfd: 438, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
  openat2: 437, fchmodat2: 452,
};

const ARCHES: Record<string, ArchTable> = {
  x64: {
    auditArch: 0xc000003e,
    x32: true,
    nr: {
      ...COMMON_NEW,
      socket: 41, socketpair: 53, clone: 56, unshare: 272,
      chmod: 90, fchmod: 91, fchmodat: 268, open: 2, openat: 257, creat: 85, mknod: 133, mknodat: 259,
      mount: 165, umount2: 166, pivot_root: 155, chroot: 161, setns: 308,
      ptrace: 101, process_vm_readv: 310, process_vm_writev: 311,
      keyctl: 250, add_key: 248, request_key: 249,
      bpf: 321, perf_event_open: 298, userfaultfd: 323,
      kexec_load: 246, kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176,
      reboot: 169, swapon: 167, swapoff: 168, syslog: 103, acct: 163, quotactl: 179,
      iopl: 172, ioperm: 173, open_by_handle_at: 304, lookup_dcookie: 212, uselib: 134, nfsservctl: 180, vhangup: 153,
    },
  },
  arm64: {
    auditArch: 0xc00000b7,
    x32: false,
    nr: {
      ...COMMON_NEW,
      socket: 198, socketpair: 199, clone: 220, unshare: 97,
      fchmod: 52, fchmodat: 53, openat: 56, mknodat: 33,
      mount: 40, umount2: 39, pivot_root: 41, chroot: 51, setns: 268,
      ptrace: 117, process_vm_readv: 270, process_vm_writev: 271,
      keyctl: 219, add_key: 217, request_key: 218,
      bpf: 280, perf_event_open: 241, userfaultfd: 282,
      kexec_load: 104, kexec_file_load: 294, init_module: 105, finit_module: 273, delete_module: 106,
      reboot: 142, swapon: 224, swapoff: 225, syslog: 116, acct: 89, quotactl: 60,
      open_by_handle_at: 265, lookup_dcookie: 18, nfsservctl: 42, vhangup: 58,
    },
  },
};

/** Refused outright (EPERM). */
const DENIED = [
  'mount', 'umount2', 'pivot_root', 'chroot', 'setns', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd',
  'keyctl', 'add_key', 'request_key',
  'bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff',
  'syslog', 'acct', 'quotactl', 'iopl', 'ioperm', 'open_by_handle_at', 'lookup_dcookie', 'uselib', 'nfsservctl', 'vhangup',
];
/** Calls refused only when the mode they set (argument `mode`) has the setuid or setgid bit. */
const MODE_AT: Record<string, number> = { chmod: 1, fchmod: 1, fchmodat: 2, fchmodat2: 2, mknod: 1, mknodat: 2, creat: 1 };
/** Calls refused only when they create a file (O_CREAT or O_TMPFILE in argument `flags`) with such a mode. */
const CREATE_AT: Record<string, { flags: number; mode: number }> = { open: { flags: 1, mode: 2 }, openat: { flags: 2, mode: 3 } };
const SETID_BITS = 0o6000;
const CREATING = 0o100 | 0o20000000; // O_CREAT | __O_TMPFILE
/** clone and unshare are refused only with a namespace flag (NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME). */
const NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;
const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16 };
const EPERM = 1;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;

// Classic BPF, as struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const retErrno = (errno: number) => 0x00050000 | errno;
// struct seccomp_data: nr at 0, arch at 4, args[6] (u64) from 16; the low half of args[n] is at 16 + 8n (little endian).
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (n: number) => 16 + 8 * n;
const OFF_ARG0_LOW = argLow(0);

/** A block's name: a fixed one, or `mode@N` / `create@F:M` for the argument checks above. */
type Label = string;
interface Insn {
  code: number;
  k: number;
  jt?: Label;
  jf?: Label;
  label?: Label; // this instruction starts the block named so
}

function program(arch: ArchTable): Insn[] {
  const nr = (name: string) => arch.nr[name];
  const out: Insn[] = [
    { code: LD_W_ABS, k: OFF_ARCH },
    { code: JEQ_K, k: arch.auditArch, jf: 'eperm' },
    { code: LD_W_ABS, k: OFF_NR },
  ];
  if (arch.x32) out.push({ code: JGE_K, k: 0x40000000, jt: 'eperm' });
  out.push({ code: JEQ_K, k: nr('socket')!, jt: 'socket' });
  out.push({ code: JEQ_K, k: nr('socketpair')!, jt: 'socketpair' });
  out.push({ code: JEQ_K, k: nr('clone')!, jt: 'nsflags' });
  out.push({ code: JEQ_K, k: nr('unshare')!, jt: 'nsflags' });
  out.push({ code: JEQ_K, k: nr('clone3')!, jt: 'enosys' });
  out.push({ code: JEQ_K, k: nr('openat2')!, jt: 'enosys' });
  for (const [name, at] of Object.entries(MODE_AT)) if (nr(name) !== undefined) out.push({ code: JEQ_K, k: nr(name)!, jt: `mode@${at}` });
  for (const [name, at] of Object.entries(CREATE_AT)) if (nr(name) !== undefined) out.push({ code: JEQ_K, k: nr(name)!, jt: `create@${at.flags}:${at.mode}` });
  for (const name of DENIED) {
    const number = nr(name);
    if (number !== undefined) out.push({ code: JEQ_K, k: number, jt: 'eperm' });
  }
  out.push({ code: RET_K, k: RET_ALLOW });
  // Blocks that read an argument, then the shared returns: BPF jumps only forward.
  out.push({ code: LD_W_ABS, k: OFF_ARG0_LOW, label: 'socket' });
  for (const family of [AF.UNIX, AF.INET, AF.INET6, AF.NETLINK]) out.push({ code: JEQ_K, k: family, jt: 'allow' });
  out.push({ code: RET_K, k: retErrno(EAFNOSUPPORT) });
  out.push({ code: LD_W_ABS, k: OFF_ARG0_LOW, label: 'socketpair' });
  out.push({ code: JEQ_K, k: AF.UNIX, jt: 'allow', jf: 'eafnosupport' });
  out.push({ code: LD_W_ABS, k: OFF_ARG0_LOW, label: 'nsflags' });
  out.push({ code: JSET_K, k: NAMESPACE_FLAGS, jt: 'eperm', jf: 'allow' });
  for (const at of new Set(Object.values(MODE_AT))) {
    out.push({ code: LD_W_ABS, k: argLow(at), label: `mode@${at}` });
    out.push({ code: JSET_K, k: SETID_BITS, jt: 'eperm', jf: 'allow' });
  }
  for (const { flags, mode } of Object.values(CREATE_AT)) {
    out.push({ code: LD_W_ABS, k: argLow(flags), label: `create@${flags}:${mode}` });
    out.push({ code: JSET_K, k: CREATING, jf: 'allow' });
    out.push({ code: LD_W_ABS, k: argLow(mode) });
    out.push({ code: JSET_K, k: SETID_BITS, jt: 'eperm', jf: 'allow' });
  }
  out.push({ code: RET_K, k: RET_ALLOW, label: 'allow' });
  out.push({ code: RET_K, k: retErrno(EPERM), label: 'eperm' });
  out.push({ code: RET_K, k: retErrno(ENOSYS), label: 'enosys' });
  out.push({ code: RET_K, k: retErrno(EAFNOSUPPORT), label: 'eafnosupport' });
  return out;
}

/** Resolves labels to relative jumps (BPF jumps go forward only, at most 255 instructions). */
function assemble(insns: Insn[]): Buffer {
  const at = new Map<Label, number>();
  insns.forEach((insn, i) => insn.label && at.set(insn.label, i));
  const buffer = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    const offset = (label: Label | undefined): number => {
      if (!label) return 0;
      const distance = at.get(label)! - i - 1;
      if (distance < 0 || distance > 255) throw new Error(`seccomp program: jump from ${i} to ${label} is out of range`);
      return distance;
    };
    buffer.writeUInt16LE(insn.code, i * 8);
    buffer.writeUInt8(offset(insn.jt), i * 8 + 2);
    buffer.writeUInt8(offset(insn.jf), i * 8 + 3);
    buffer.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buffer;
}

export interface SeccompPolicy {
  /** The program in the layout bwrap reads from its --seccomp fd, or null on an architecture without a table. */
  program: Buffer | null;
  /** What the filter refuses, for `agentd doctor`. */
  summary: string;
}

const policies = new Map<string, SeccompPolicy>();

/** The filter for this machine's architecture (x86_64 and aarch64); made once per architecture (every launch plan asks). */
export function seccompPolicy(arch: string = process.arch): SeccompPolicy {
  let policy = policies.get(arch);
  if (!policy) policies.set(arch, (policy = makePolicy(arch)));
  return policy;
}

function makePolicy(arch: string): SeccompPolicy {
  const table = ARCHES[arch];
  if (!table || process.platform !== 'linux') return { program: null, summary: `no seccomp filter: no syscall table for ${process.platform}/${arch}` };
  const denied = DENIED.filter((name) => table.nr[name] !== undefined);
  return {
    program: assemble(program(table)),
    summary:
      `seccomp filter: ${denied.length + 2} calls refused (${denied.join(', ')}, clone3, openat2), clone/unshare with namespace flags, ` +
      `setuid/setgid modes, socket families other than unix/inet/inet6/netlink${table.x32 ? ', every x32 and i386 call' : ', every call of another architecture'}`,
  };
}
