import { createRequire } from 'node:module';

/** glibc's malloc_trim(0): gives every free page of every malloc arena back. True when memory was returned. */
export type MallocTrim = () => boolean;

interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => unknown };
}

/**
 * malloc_trim through koffi, an FFI whose npm package carries prebuilt binaries (no
 * compiler, no Node headers at install). Undefined where the C library is not glibc or koffi
 * has no binary for the platform: the daemon then keeps what malloc freed, as before.
 * Loaded on first use, so a daemon that never goes idle after work never pays for it.
 */
export function loadMallocTrim(): MallocTrim | undefined {
  if (!glibcVersion()) return undefined;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    return () => trim(0) === 1;
  } catch {
    return undefined;
  }
}

/** The running glibc's version; undefined where the C library is not glibc. */
export function glibcVersion(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: unknown } } | undefined)?.header;
  return typeof header?.glibcVersionRuntime === 'string' ? header.glibcVersionRuntime : undefined;
}
