/**
 * Holds (and optionally fails) a running process's fsyncs, by attaching strace to it with
 * syscall fault injection: the daemon's real LevelDB writes, made slow or failing as a
 * slow or broken disk would make them, without a line of the daemon changed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { until } from './until.js';

export interface FsyncFault {
  /** Detaches strace (the process goes on unhindered, unless it died meanwhile). */
  detach(): Promise<void>;
}

/**
 * Every fdatasync/fsync of `pid` (all its threads, present and future) waits `delayMs`
 * before it runs, and then fails with `error` (an errno name such as 'EIO') when given.
 * Resolves once strace is attached to every thread of the process.
 */
export async function holdFsyncs(pid: number, options: { delayMs: number; error?: string }): Promise<FsyncFault> {
  const inject = [`delay_enter=${options.delayMs * 1000}`, ...(options.error ? [`error=${options.error}`] : [])].join(':');
  const strace: ChildProcess = spawn('strace', ['-f', '-p', String(pid), '-o', '/dev/null', '-e', 'trace=fdatasync,fsync', '-e', `inject=fdatasync,fsync:${inject}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  strace.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => strace.on('exit', () => resolve()));
  // "Process N attached with T threads": strace holds every thread from here on (and -f those to come).
  await until(() => /attached/.test(stderr) || strace.exitCode !== null, `strace attached to ${pid}`);
  if (strace.exitCode !== null) throw new Error(`strace could not attach to ${pid}: ${stderr}`);
  return {
    async detach() {
      if (strace.exitCode === null && strace.signalCode === null) strace.kill('SIGINT');
      await exited;
    },
  };
}
