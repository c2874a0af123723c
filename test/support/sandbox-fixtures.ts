import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listProcesses } from '../../sandbox/tools/procs.js';
import type { Sandbox, ToolResult } from '../../sandbox/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The package root (holding node_modules), from the compiled test file wherever the build went. */
export const packageRoot = (() => {
  for (let dir = here; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    try {
      readFileSync(path.join(dir, 'package.json'));
      readdirSync(path.join(dir, 'node_modules'));
      return dir;
    } catch {
      // Keep walking up.
    }
  }
  throw new Error('package root not found');
})();

export const fixturePath = (name: string) => path.join(here, name);

/** A temp tree with a workspace and, beside it, a fake agentd data dir holding a marker file. */
export interface Playground {
  root: string;
  workspace: string;
  dataDir: string;
  marker: string; // the secret text in the data dir's marker file
  markerFile: string;
  tag: string; // put in each sandbox's env so the test can find its processes in /proc
  cleanup(): void;
}

export function makePlayground(): Playground {
  const root = realpathSync(mkdtempSync(path.join(tmpdir(), 'agentd-sbx-test-')));
  const workspace = path.join(root, 'workspace');
  const dataDir = path.join(root, 'home', '.agentd');
  mkdirSync(workspace, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const marker = `data-dir-secret-${randomBytes(8).toString('hex')}`;
  const markerFile = path.join(dataDir, 'marker.txt');
  writeFileSync(markerFile, marker);
  const tag = `agentd-test-${randomBytes(8).toString('hex')}`;
  return { root, workspace, dataDir, marker, markerFile, tag, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export function textOf(result: ToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
}

export async function bash(sandbox: Sandbox, command: string, timeoutMs?: number): Promise<ToolResult> {
  return sandbox.execute('bash', timeoutMs === undefined ? { command } : { command, timeout_ms: timeoutMs });
}

/** Pids of live (non-zombie) processes whose environment contains `tag`. */
export function processesTagged(tag: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${name}/environ`, 'utf8').includes(tag)) found.push(Number(name));
    } catch {
      // Gone, or not readable.
    }
  }
  return found;
}

/** Tasks (threads included, as a process limit counts them) of the processes working in `dir`: a sandbox's, seen from outside. */
export function tasksWorkingIn(dir: string): number {
  return listProcesses()
    .filter((p) => p.state !== 'Z')
    .reduce((sum, p) => {
      try {
        return readlinkSync(`/proc/${p.pid}/cwd`) === dir ? sum + p.threads : sum;
      } catch {
        return sum; // gone
      }
    }, 0);
}

/** The pid (outside the sandbox) of the tool host of the sandbox started with `tag` in its env. */
export function hostPid(tag: string): number {
  for (const pid of processesTagged(tag)) {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (cmdline[0] === process.execPath && cmdline[1]?.endsWith(path.join('sandbox', 'host', 'bundle', 'main.cjs'))) return pid;
  }
  throw new Error(`no host process tagged ${tag}`);
}

/** Polls until no process carries `tag`, or the deadline passes; returns the ones left. */
export async function waitUntilGone(tag: string, withinMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left = processesTagged(tag);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}
