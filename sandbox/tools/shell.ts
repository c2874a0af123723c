import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { IPty } from '@lydell/node-pty';
import type { Shell, ShellRun } from './define.js';
import { killProcesses, killSessionMembers, sessionMembers } from './procs.js';


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
  private buffer = '';
  private onData: (() => void) | null = null;
  private onExit: ((code: number) => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly scratch: string;
  private counter = 0;

  constructor(
    private readonly cwd: string,
    private readonly env: Record<string, string>,
    private readonly outputCap: number,
    scratchParent: string,
  ) {
    this.scratch = mkdtempSync(path.join(scratchParent, 'agentd-shell-'));
  }

  run(command: string, timeoutMs: number, signal: AbortSignal): Promise<ShellRun> {
    const next = this.queue.then(() => this.runNow(command, timeoutMs, signal));
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.stopShell();
    rmSync(this.scratch, { recursive: true, force: true });
  }

  private stopShell(): void {
    const pty = this.pty;
    this.pty = null;
    if (pty) {
      killProcesses(sessionMembers(pty.pid), pty.pid);
      try {
        pty.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  private async start(): Promise<IPty> {
    const mod = (await import('@lydell/node-pty')) as typeof import('@lydell/node-pty') & { default?: typeof import('@lydell/node-pty') };
    const spawn = mod.spawn ?? mod.default!.spawn;
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
    this.pty = pty;
    const ready = marker('READY', randomBytes(8).toString('hex'));
    // Job control off: no job notices in the output; commands are killed by session membership instead.
    pty.write(`command -p stty -echo -onlcr 2>/dev/null; set +m; PS0=''; unset PROMPT_COMMAND; set +o history; printf '%s\\n' ${ready.shell}\n`);
    const seen = await this.waitFor(`${ready.seen}\n`, 5_000);
    if (!seen) {
      this.stopShell();
      throw new Error('the shell did not start');
    }
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
    if (signal.aborted) return { output: '', exitCode: null, ended: 'interrupted', notes };
    const pty = this.pty ?? (await this.start());
    const id = randomBytes(12).toString('hex');
    const begin = marker('BEGIN', id);
    const end = marker('END', id);
    const file = path.join(this.scratch, `cmd-${++this.counter}.sh`);
    writeFileSync(file, command);
    const before = new Set(sessionMembers(pty.pid).map((p) => p.pid));
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
      const onAbort = () => finish(null, 'interrupted');
      const timer = setTimeout(() => finish(null, 'timeout'), timeoutMs);
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
    if (result.ended === 'shell_exited') {
      await killSessionMembers(pty.pid);
      notes.push('the shell exited; the next command starts a fresh shell (working directory and variables are reset)');
    } else if (result.ended !== 'exited') {
      if (!(await this.stopCommand(pty, id, before))) {
        this.stopShell();
        notes.push('the shell did not recover after the command was killed and was restarted (working directory and variables are reset)');
      }
    }
    return { output: output.toString().replace(/\r\n/g, '\n'), exitCode: result.exitCode, ended: result.ended, notes };
  }

  /**
   * Stops the running command like Ctrl-C, then makes sure: SIGINT to the shell and the command's
   * processes (a child that dies of SIGINT makes bash abandon the whole command line, loops
   * included), SIGKILL to whatever of the command is left, then a marker proves the shell is
   * listening again. Processes from earlier calls (`before`) are left alone.
   */
  private async stopCommand(pty: IPty, id: string, before: ReadonlySet<number>): Promise<boolean> {
    const recovered = marker('RECOVER', id);
    for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
      if (this.pty !== pty) return false;
      const started = sessionMembers(pty.pid).filter((p) => !before.has(p.pid));
      for (const pid of [pty.pid, ...started.map((p) => p.pid)]) {
        try {
          process.kill(pid, 'SIGINT');
        } catch {
          // Already gone.
        }
      }
      await new Promise((r) => setTimeout(r, 20));
      await killSessionMembers(pty.pid, before);
      pty.write(`\nprintf '\\n%s\\n' ${recovered.shell}\n`);
      if (await this.waitFor(`${recovered.seen}\n`, RECOVERY_WAIT_MS)) {
        // The shell is back at its prompt, so the command can start nothing new: sweep what it forked
        // between the kills above and the moment the shell noticed the interrupt.
        await killSessionMembers(pty.pid, before);
        return true;
      }
    }
    return false;
  }
}
