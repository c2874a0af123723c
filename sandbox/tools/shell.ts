import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { IPty } from '@lydell/node-pty';
import type { Shell, ShellRun } from './define.js';
import type { LimitState, LimitWatch } from './limit-watch.js';
import type { SandboxProcesses, Snapshot } from './procs.js';

const RECOVERY_ATTEMPTS = 3;
const IDLE_KEEP = 4_096;
const RECOVERY_WAIT_MS = 1_000;

/** Keeps the first and last `half` characters of a stream and counts what falls between. */
class CappedText {
  private head = '';
  private tail = '';
  private omitted = 0;
  constructor(private readonly half: number) {}
  push(chunk: string): void {
    if (this.head.length < this.half) {
      const take = this.half - this.head.length;
      this.head += chunk.slice(0, take);
      chunk = chunk.slice(take);
    }
    this.tail += chunk;
    if (this.tail.length > this.half * 4) this.trimTail();
  }
  private trimTail(): void {
    const drop = Math.max(0, this.tail.length - this.half);
    this.omitted += drop;
    this.tail = this.tail.slice(drop);
  }
  toString(): string {
    this.trimTail();
    if (this.omitted === 0) return this.head + this.tail;
    return `${this.head}\n\n[... output truncated: ${this.omitted} characters omitted ...]\n\n${this.tail}`;
  }
}

type PtyModule = typeof import('@lydell/node-pty');
let ptyModule: Promise<PtyModule> | undefined;

/** Loads node-pty (a native module: some milliseconds), once; the host calls it while it waits for work. */
export function loadPty(): Promise<PtyModule> {
  ptyModule ??= import('@lydell/node-pty').then((mod) => {
    const m = mod as PtyModule & { default?: PtyModule };
    return typeof m.spawn === 'function' ? m : m.default!;
  });
  return ptyModule;
}

function marker(kind: string, id: string): { shell: string; seen: string } {
  // Printed from two quoted halves so the text typed into the shell never equals the text it prints.
  return { shell: `"__AGENTD_${kind}_""${id}"`, seen: `__AGENTD_${kind}_${id}` };
}

/**
 * One persistent bash in a PTY. Commands run one at a time in the shell itself (so `cd` and
 * exports persist), delimited by random markers, with stdin from /dev/null.
 */
export class PtyShell implements Shell {
  private pty: IPty | null = null;
  /** The shell being started, until it says it is ready (then it is `pty`). */
  private startingPty: IPty | null = null;
  private starting: Promise<IPty> | null = null;
  private buffer = '';
  private onData: (() => void) | null = null;
  private onExit: ((code: number) => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly scratch: string;
  private counter = 0;
  /** No shell can start any more (see runNow): the host gives the sandbox up. */
  unusable = false;
  /** The limit counters when the last command ended: what happened since is the background's doing. */
  private lastLimits: LimitState | undefined;

  constructor(
    private readonly cwd: string,
    private readonly env: Record<string, string>,
    private readonly outputCap: number,
    scratchParent: string,
    private readonly processes: SandboxProcesses,
    private readonly limits: LimitWatch | null,
  ) {
    this.scratch = mkdtempSync(path.join(scratchParent, 'agentd-shell-'));
  }

  run(command: string, timeoutMs: number, signal: AbortSignal): Promise<ShellRun> {
    const next = this.queue.then(() => this.runNow(command, timeoutMs, signal));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Starts the shell now rather than at the first command (which then finds it ready). */
  warm(): void {
    this.ready().catch(() => undefined); // the first command starts it again and reports the failure
  }

  private ready(): Promise<IPty> {
    if (this.pty) return Promise.resolve(this.pty);
    this.starting ??= this.start().finally(() => (this.starting = null));
    return this.starting;
  }

  close(): void {
    this.stopShell();
    this.stopShell(this.startingPty);
    rmSync(this.scratch, { recursive: true, force: true });
  }

  private stopShell(pty = this.pty): void {
    if (this.pty === pty) this.pty = null;
    if (pty) {
      for (const p of [...this.processes.started(pty.pid), { pid: pty.pid }]) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  }

  private async start(): Promise<IPty> {
    const { spawn } = await loadPty();
    const env = { ...this.env, TERM: 'dumb', PAGER: 'cat', GIT_PAGER: 'cat', PS1: '', PS2: '', HISTFILE: '/dev/null' };
    const pty = spawn('/bin/bash', ['--noprofile', '--norc', '--noediting', '-i'], { name: 'dumb', cols: 200, rows: 50, cwd: this.cwd, env });
    this.buffer = '';
    pty.onData((data) => {
      this.buffer += data;
      if (this.onData) this.onData();
      else if (this.buffer.length > IDLE_KEEP) this.buffer = this.buffer.slice(-IDLE_KEEP); // background jobs talking between calls
    });
    pty.onExit(({ exitCode }) => {
      if (this.pty === pty) this.pty = null;
      this.onExit?.(exitCode);
    });
    this.startingPty = pty;
    const ready = marker('READY', randomBytes(8).toString('hex'));
    // Job control off: no job notices in the output; commands are killed by session membership instead.
    // The shell and its commands go first when memory runs out, not the host that serves the tools.
    pty.write(`command -p stty -echo -onlcr 2>/dev/null; set +m; PS0=''; unset PROMPT_COMMAND; set +o history; echo 500 > /proc/self/oom_score_adj 2>/dev/null; printf '%s\\n' ${ready.shell}\n`);
    const seen = await this.waitFor(`${ready.seen}\n`, 5_000);
    this.startingPty = null;
    if (!seen) {
      this.stopShell(pty);
      throw new Error('the shell did not start');
    }
    // Only now: a command that came while it started waits for this start (ready()), rather than
    // taking the shell over half-started and having its output handler replaced by the start's.
    this.pty = pty;
    return pty;
  }

  /** Waits until `text` has arrived, discarding everything up to and including it. */
  private waitFor(text: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.onData = null;
        this.onExit = null;
        resolve(ok);
      };
      const check = () => {
        const at = this.buffer.indexOf(text);
        if (at === -1) return;
        this.buffer = this.buffer.slice(at + text.length);
        finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.onData = check;
      this.onExit = () => finish(false);
      check();
    });
  }

  private async runNow(command: string, timeoutMs: number, signal: AbortSignal): Promise<ShellRun> {
    const notes: string[] = [];
    if (signal.aborted) return { output: '', exitCode: null, ended: 'interrupted', notes, unkilled: 0, limitReached: false };
    let pty = await this.ready();
    const limitsBefore = await this.clearBackgroundAtLimit(pty.pid, notes);
    // Exited meanwhile (its exit had nobody to tell): a fresh one; from here on its exit is heard.
    if (this.pty !== pty) pty = await this.ready();
    const id = randomBytes(12).toString('hex');
    const begin = marker('BEGIN', id);
    const end = marker('END', id);
    const file = path.join(this.scratch, `cmd-${++this.counter}.sh`);
    writeFileSync(file, command);
    const before = this.processes.snapshot();
    const output = new CappedText(Math.floor(this.outputCap / 2));
    const endPattern = new RegExp(`\\n${end.seen}:(\\d+)\\n`);
    const keep = end.seen.length + 16;

    const result = await new Promise<{ exitCode: number | null; ended: ShellRun['ended'] }>((resolve) => {
      let started = false;
      const finish = (exitCode: number | null, ended: ShellRun['ended']) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.onData = null;
        this.onExit = null;
        resolve({ exitCode, ended });
      };
      const check = () => {
        if (!started) {
          const at = this.buffer.indexOf(`${begin.seen}\n`);
          if (at === -1) return;
          this.buffer = this.buffer.slice(at + begin.seen.length + 1);
          started = true;
        }
        const match = endPattern.exec(this.buffer);
        if (match) {
          output.push(this.buffer.slice(0, match.index));
          this.buffer = this.buffer.slice(match.index + match[0].length);
          finish(Number(match[1]), 'exited');
          return;
        }
        if (this.buffer.length > keep) {
          output.push(this.buffer.slice(0, this.buffer.length - keep));
          this.buffer = this.buffer.slice(this.buffer.length - keep);
        }
      };
      // Cut short: what the command printed so far is part of its result (the tail held back for the marker too).
      const stop = (ended: 'interrupted' | 'timeout') => {
        if (started) output.push(this.buffer);
        this.buffer = '';
        finish(null, ended);
      };
      const onAbort = () => stop('interrupted');
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.onData = check;
      this.onExit = (code) => {
        if (started) output.push(this.buffer);
        this.buffer = '';
        finish(code, 'shell_exited');
      };
      // `trap - INT` first: a command that ignored SIGINT in an earlier call must not make this one unstoppable.
      pty.write(`trap - INT; printf '%s\\n' ${begin.shell}; . '${file}' < /dev/null; printf '\\n%s:%s\\n' ${end.shell} "$?"\n`);
    });

    rmSync(file, { force: true });
    let unkilled = 0;
    if (result.ended === 'shell_exited') {
      unkilled = await this.processes.killUntilGone(() => this.processes.startedSince(before, null));
      notes.push('the shell exited; the next command starts a fresh shell (working directory and variables are reset)');
    } else if (result.ended !== 'exited') {
      const stopped = await this.stopCommand(pty, id, before);
      unkilled = stopped.unkilled;
      if (!stopped.recovered) {
        this.stopShell();
        notes.push('the shell did not recover after the command was killed and was restarted (working directory and variables are reset)');
      }
    }
    const limitReached = limitsBefore ? await this.reportLimits(limitsBefore, before, notes) : false;
    // Killed at the memory limit, the shell may leave the memory full (files in the tmpfs dirs
    // count against it, and no process holds them): if a fresh one cannot start, nothing can.
    if (result.ended === 'shell_exited' && limitReached && !(await this.ready().then(() => true, () => false))) {
      this.unusable = true;
      notes.push('the sandbox is out of memory even without its shell (files in /tmp, /dev/shm or /run hold it): it is replaced by a fresh one');
    }
    return { output: output.toString().replace(/\r\n/g, '\n'), exitCode: result.exitCode, ended: result.ended, notes, unkilled, limitReached };
  }

  /**
   * Before a command: if processes left running by earlier commands drove the sandbox into its
   * process limit (a fork bomb in the background), nothing could run; kill them all first.
   * Returns the limit counters the command starts from.
   */
  private async clearBackgroundAtLimit(shellPid: number, notes: string[]): Promise<LimitState | undefined> {
    if (!this.limits) return undefined;
    let now = await this.limits.read();
    const reached = this.lastLimits && this.limits.pidsReached(this.lastLimits, now);
    if (reached) {
      const left = await this.processes.killUntilGone(() => this.processes.started(shellPid));
      notes.push(
        `with processes left running by earlier commands, the sandbox ${reached}; ` +
          (left === 0 ? 'they were all killed before this command ran' : `${left} of them could not be killed`),
      );
      now = await this.limits.read();
    }
    return now;
  }

  /** After a command: which limit it ran into, if any. At the process limit, what it started is killed. */
  private async reportLimits(from: LimitState, before: Snapshot, notes: string[]): Promise<boolean> {
    const watch = this.limits!;
    let now = await watch.read();
    let reached = false;
    const pids = watch.pidsReached(from, now);
    if (pids) {
      reached = true;
      const shellPid = this.pty?.pid ?? null;
      const left = await this.processes.killUntilGone(() => this.processes.startedSince(before, shellPid));
      notes.push(`the sandbox ${pids}: ${left === 0 ? 'every process this command started was killed' : `${left} processes this command started could not be killed`}`);
    }
    const killed = watch.oomKilled(from, now);
    if (killed > 0) {
      reached = true;
      notes.push(`the sandbox reached its memory limit (${watch.limits.memoryMb} MB): the kernel killed ${killed === 1 ? 'a process' : `${killed} processes`} for memory`);
    }
    now = await watch.read();
    this.lastLimits = now;
    return reached;
  }

  /**
   * Stops the running command like Ctrl-C, then makes sure: SIGINT to the shell and the command's
   * processes (a child that dies of SIGINT makes bash abandon the whole command line, loops
   * included), SIGKILL to every process started since the command began (daemonised ones too:
   * they are found by start time, not by session or group), then a marker proves the shell is
   * listening again. Processes from earlier calls are left alone.
   */
  private async stopCommand(pty: IPty, id: string, before: Snapshot): Promise<{ recovered: boolean; unkilled: number }> {
    const recovered = marker('RECOVER', id);
    const started = () => this.processes.startedSince(before, pty.pid);
    for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
      if (this.pty !== pty) break;
      for (const pid of [pty.pid, ...started().map((p) => p.pid)]) {
        try {
          process.kill(pid, 'SIGINT');
        } catch {
          // Already gone.
        }
      }
      await new Promise((r) => setTimeout(r, 20));
      await this.processes.killUntilGone(started);
      pty.write(`\nprintf '\\n%s\\n' ${recovered.shell}\n`);
      if (await this.waitFor(`${recovered.seen}\n`, RECOVERY_WAIT_MS)) {
        // The shell is back at its prompt, so the command can start nothing new: sweep what it forked
        // between the kills above and the moment the shell noticed the interrupt.
        return { recovered: true, unkilled: await this.processes.killUntilGone(started) };
      }
    }
    return { recovered: false, unkilled: await this.processes.killUntilGone(() => this.processes.startedSince(before, null)) };
  }
}
