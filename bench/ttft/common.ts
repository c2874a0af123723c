import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { printFigure as printLine, type Figure } from '../log.js';


/** The bench's entry: the emulator and probe children are forks of it. */
export const THIS_FILE = fileURLToPath(new URL('../ttft.js', import.meta.url));
export const API_KEY = 'bench-key';
export const REPLY_TEXT = 'Sure. I looked at it and everything is in order; nothing else needs to change.';

export const OVERHEAD_RUNS = Number(process.env.TTFT_RUNS ?? 100);
export const RUN_TURNS = Number(process.env.TTFT_RUN_TURNS ?? 40);
export const SANDBOX_RUNS = Number(process.env.TTFT_SANDBOX_RUNS ?? 60);
export const SANDBOX_DELAY_MS = 500;
export const WAKE_EVENTS = 10_000;
export const WAKE_REPS = 25;
export const WAKE_HUGE_EVENTS = Number(process.env.TTFT_WAKE_EVENTS ?? 100_000);
export const WAKE_HUGE_REPS = 7;
export const LOAD_SESSIONS = 100;
export const LOAD_TOOL_EVERY = 5; // every 5th session's turns make a tool call (20 of 100)
export const LOAD_CONNECTIONS = 10;
export const LOAD_SECONDS = Number(process.env.TTFT_LOAD_SECONDS ?? 20);

// ---------------------------------------------------------------- small helpers

/** Every figure carries the machine's state: these numbers move with what else runs. */
export function printFigure(figure: Figure): void {
  printLine({ ...figure, host: { cores: availableParallelism(), loadavg1: round(loadavg()[0]!, 1) } });
}

export function quantile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function stats(samples: number[]): { p50: number; p95: number; n: number } {
  return { p50: round(quantile(samples, 0.5)), p95: round(quantile(samples, 0.95)), n: samples.length };
}

/**
 * Runs every arm once per rep, each rep starting one arm later than the one before, so
 * the machine's drift (other load, caches, GC) falls on every arm alike.
 */
export async function inRotation<A>(reps: number, arms: readonly A[], run: (arm: A, rep: number) => void | Promise<void>): Promise<void> {
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < arms.length; k++) await run(arms[(rep + k) % arms.length]!, rep);
  }
}

/** A distribution as two fields of a figure: `<name>P50` and `<name>P95`. */
export function p50p95(name: string, s: { p50: number; p95: number }): Record<string, number> {
  return { [`${name}P50`]: s.p50, [`${name}P95`]: s.p95 };
}

export function mean(samples: number[]): number {
  return samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** CPU time (user + system) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Pids of every process below `pid` (sandboxes and what they run). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirNumeric('/proc')) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(name);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export function readdirNumeric(dir: string): number[] {
  try {
    return readdirSync(dir).filter((name) => /^\d+$/.test(name)).map(Number);
  } catch {
    return [];
  }
}
