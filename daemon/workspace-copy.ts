/**
 * The copy of a workspace a fork gets: directories, regular files and symlinks (as links),
 * owner-only like everything in the data dir;
 * FIFOs, sockets and device nodes are skipped (a FIFO would block a reader forever, a device
 * node is nothing a project needs). Regular files are copied by coreutils cp with
 * --sparse=always and --reflink=auto, so a sparse file stays sparse and a file system with
 * reflinks shares blocks. The size is checked before anything is written (allocated bytes,
 * not apparent sizes: a 1 TB `truncate` allocates nothing), again after (the source may
 * grow meanwhile), and a copy that fails for any reason is removed.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, opendir, readlink, rm, statfs, symlink, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AgentdError, ErrorCode } from '../protocol/index.js';

export interface CopyReport {
  files: number;
  allocatedBytes: number;
  /** Special files left out, relative to the workspace (the first 100). */
  skipped: string[];
  skippedCount: number;
}

interface Survey {
  dirs: { rel: string; mode: number }[];
  files: { rel: string; mode: number }[];
  links: string[];
  special: string[];
  allocatedBytes: number;
}

/** Reserve on the target file system beyond the copy itself, so a fork never fills the disk the log lives on. */
const FREE_SPACE_MARGIN = 256 * 1024 * 1024;
const CP_BATCH = 400;
/** The owner's permission bits and the sticky bit. */
const OWNER_ONLY = 0o1700;

async function survey(root: string): Promise<Survey> {
  const out: Survey = { dirs: [], files: [], links: [], special: [], allocatedBytes: 0 };
  const pending = [''];
  while (pending.length) {
    const rel = pending.pop()!;
    for await (const entry of await opendir(join(root, rel))) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      const info = await lstat(join(root, child));
      if (info.isDirectory()) {
        out.dirs.push({ rel: child, mode: info.mode & 0o7777 });
        pending.push(child);
      } else if (info.isSymbolicLink()) out.links.push(child);
      else if (info.isFile()) {
        out.files.push({ rel: child, mode: info.mode & 0o7777 });
        out.allocatedBytes += info.blocks * 512;
      } else out.special.push(child);
    }
  }
  return out;
}

const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

function tooLarge(message: string, data: Record<string, number>): AgentdError {
  return new AgentdError(ErrorCode.WorkspaceTooLarge, message, data);
}

async function checkSize(allocatedBytes: number, maxBytes: number, target: string): Promise<void> {
  if (allocatedBytes > maxBytes) {
    throw tooLarge(`the workspace holds ${gib(allocatedBytes)} of data; a fork copies at most ${gib(maxBytes)} (sandbox.forkMaxBytes in config.json)`, { allocatedBytes, maxBytes });
  }
  const fs = await statfs(dirname(target));
  const free = fs.bavail * fs.bsize;
  if (allocatedBytes + FREE_SPACE_MARGIN > free) {
    throw tooLarge(`the workspace holds ${gib(allocatedBytes)} of data and only ${gib(free)} is free where forks are kept`, { allocatedBytes, freeBytes: free });
  }
}

function cp(source: string, target: string, files: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cp', ['-R', '-P', '--parents', '--sparse=always', '--reflink=auto', '--preserve=mode,timestamps', '-t', target, '--', ...files], {
      cwd: source,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`cp failed: ${stderr.trim() || `exit ${code}`}`))));
  });
}

async function copyInto(source: string, target: string, plan: Survey): Promise<void> {
  await mkdir(target, { mode: 0o700 });
  for (const dir of plan.dirs) await mkdir(join(target, dir.rel), { mode: 0o700 });
  for (const link of plan.links) await symlink(await readlink(join(source, link)), join(target, link));
  const files = plan.files.map((f) => f.rel);
  for (let i = 0; i < files.length; i += CP_BATCH) await cp(source, target, files.slice(i, i + CP_BATCH));
}

/** Copies `source` to `target` (which must not exist); see the module comment. */
export async function copyWorkspace(source: string, target: string, maxBytes: number): Promise<CopyReport> {
  const plan = await survey(source);
  await checkSize(plan.allocatedBytes, maxBytes, target);
  try {
    await copyInto(source, target, plan);
    // What changed in the source while it was copied: a file turned special, or grown past the limit.
    const copied = await survey(target);
    for (const rel of copied.special) await unlink(join(target, rel));
    if (copied.allocatedBytes > maxBytes) {
      throw tooLarge(`the workspace grew to ${gib(copied.allocatedBytes)} while it was copied; a fork copies at most ${gib(maxBytes)}`, { allocatedBytes: copied.allocatedBytes, maxBytes });
    }
    // The copy lives in the data dir, where everything is owner-only; and no setuid or setgid bit
    // survives (the sandbox that wrote the source may not make one either).
    for (const file of copied.files) if ((file.mode & OWNER_ONLY) !== file.mode) await chmod(join(target, file.rel), file.mode & OWNER_ONLY);
    const deepestFirst = [...plan.dirs].sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const dir of deepestFirst) await chmod(join(target, dir.rel), dir.mode & OWNER_ONLY);
    await chmod(target, 0o700);
    return { files: plan.files.length, allocatedBytes: copied.allocatedBytes, skipped: plan.special.slice(0, 100), skippedCount: plan.special.length };
  } catch (error) {
    await rm(target, { recursive: true, force: true });
    if (error instanceof AgentdError) throw error;
    throw new AgentdError(ErrorCode.StorageFailure, `copying the workspace for the fork failed: ${(error as Error).message}`);
  }
}
