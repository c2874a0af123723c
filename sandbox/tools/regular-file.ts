import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { ToolFailure } from './define.js';

/**
 * Opens `file` for the file tools only when it is a regular file. The open never blocks: a
 * FIFO put in the workspace (by the model's own commands) would otherwise hang the call, and
 * the host's thread with it, until a writer or reader came, which none ever would.
 */
function openRegular(file: string, shown: string, flags: number): number {
  let fd: number;
  try {
    fd = openSync(file, flags | constants.O_NONBLOCK | constants.O_NOCTTY, 0o666);
  } catch (error) {
    // A FIFO with no reader refuses a non-blocking write open with ENXIO.
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') throw new ToolFailure(`${shown} is not a regular file`);
    throw error;
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new ToolFailure(`${shown} is not a regular file`);
  }
  return fd;
}

/** Reads up to `limit` bytes of a regular file (synchronously: the host serves one sandbox, and read_file caps files at 10 MB). */
export function readRegular(file: string, shown: string, limit = Number.POSITIVE_INFINITY): Buffer {
  const fd = openRegular(file, shown, constants.O_RDONLY);
  try {
    const bytes = Math.min(limit, fstatSync(fd).size);
    const buffer = Buffer.alloc(bytes);
    let filled = 0;
    while (filled < bytes) {
      const n = readSync(fd, buffer, filled, bytes - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return buffer.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}

/** Creates or overwrites a regular file with `content`. */
export function writeRegular(file: string, shown: string, content: string | Buffer): void {
  const fd = openRegular(file, shown, constants.O_WRONLY | constants.O_CREAT);
  try {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    ftruncateSync(fd); // only once it is known to be a regular file, through the fd the check was made on
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written, bytes.length - written, written);
  } finally {
    closeSync(fd);
  }
}

