import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataLayout, type DataLayout } from '../../protocol/index.js';
import { connect, type AgentdClient } from '../../clients/lib/index.js';
import { tempDir } from './temp.js';
import { until } from './until.js';

/** The compiled `agentd` entry, as a user runs it. */
export const AGENTD_BIN = fileURLToPath(new URL('../../bin/agentd.cjs', import.meta.url));

/** A fresh data dir for one test; no test shares one. Named after the test file, so a leak report says whose it is. */
export function tempHome(prefix = `agentd-${basename(process.argv[1] ?? 'test').replace(/\.test\.js$/, '')}-`): DataLayout {
  return dataLayout(tempDir(prefix));
}

export interface TestDaemon {
  layout: DataLayout;
  proc: ChildProcess;
  /** Everything the daemon wrote to stdout (must stay empty) and stderr. */
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  client(options?: { name?: string; permissionRequests?: boolean }): Promise<AgentdClient>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops the daemon (SIGTERM, as `agentd stop` would) and removes its data dir. */
  dispose(): Promise<void>;
}

/** Runs `agentd` with the given data dir and returns its outputs. */
export function runAgentd(
  layout: DataLayout,
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENTD_BIN, ...args], {
      env: { ...process.env, AGENTD_HOME: layout.home, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running `agentd` command (log --follow, attach, stdio, stop) a test talks to. */
export interface SpawnedAgentd {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits until stdout + stderr match `re` (fails after a generous deadline). */
  until(re: RegExp): Promise<void>;
  /** Types a line on its stdin. */
  type(line: string): void;
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGINT, as Ctrl-C) unless it exited, and waits for the exit. */
  close(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnAgentd(layout: DataLayout, args: string[], options: { env?: Record<string, string> } = {}): SpawnedAgentd {
  const proc = spawn(process.execPath, [AGENTD_BIN, ...args], {
    env: { ...process.env, AGENTD_HOME: layout.home, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  proc.stdin!.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    async until(re) {
      await until(() => re.test(out + err), `agentd ${args.join(' ')} to print ${re}`, 60_000).catch((error: Error) =>
        Promise.reject(new Error(`${error.message}; it printed:\n${out}${err}`)),
      );
    },
    type: (line) => void proc.stdin!.write(`${line}\n`),
    exited,
    async close(signal = 'SIGINT') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Starts `agentd daemon` as a child process and waits until its socket answers. */
export async function startDaemon(
  options: {
    layout?: DataLayout;
    env?: Record<string, string>;
    wrap?: string;
    /** Arguments of `agentd daemon`, e.g. ['--isolation-floor', 'namespaces']. */
    args?: string[];
    /** A command the daemon runs under, e.g. setpriv to run it as another user. */
    prefix?: string[];
  } = {},
): Promise<TestDaemon> {
  const layout = options.layout ?? tempHome();
  const args = [AGENTD_BIN, 'daemon', ...(options.args ?? [])];
  const env = { ...process.env, AGENTD_HOME: layout.home, ...options.env };
  const proc = options.wrap
    ? spawn('bash', ['-c', `${options.wrap}; exec "$0" "$@"`, process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : options.prefix?.length
      ? spawn(options.prefix[0]!, [...options.prefix.slice(1), process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = await Promise.race([waitForSocket(layout.socket), exited.then(() => false)]);
  if (!ready) throw new Error(`daemon exited before it was ready: ${err}`);
  const clients: AgentdClient[] = [];
  const daemon: TestDaemon = {
    layout,
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async client(o = {}) {
      const c = await connect({
        layout,
        autostart: false,
        clientName: o.name ?? 'test',
        capabilities: { permissionRequests: o.permissionRequests ?? false },
      });
      clients.push(c);
      return c;
    },
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async dispose() {
      for (const c of clients) c.close();
      // A stop as a user's: the daemon closes its sandboxes, which remove their scratch
      // dirs. SIGKILL only when it does not go within 10 s.
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await daemon.kill('SIGTERM');
      clearTimeout(killer);
      rmSync(layout.home, { recursive: true, force: true });
    },
  };
  return daemon;
}

/**
 * Stops every daemon process of this data dir and waits until they are gone, including
 * one that an autostart spawned and that is still booting: when two clients autostart
 * at once, the loser of the lock race exits, unless the winner is stopped before the
 * loser reaches the lock; then the loser becomes a daemon nobody asked for.
 */
export async function stopDaemonsOf(layout: DataLayout): Promise<void> {
  const mine = () =>
    readdirSync('/proc').filter((pid) => {
      try {
        return /\bdaemon\b/.test(readFileSync(`/proc/${pid}/cmdline`, 'latin1')) && readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`AGENTD_HOME=${layout.home}`);
      } catch {
        return false;
      }
    });
  const deadline = Date.now() + 10_000;
  for (let pids = mine(); pids.length > 0; pids = mine()) {
    for (const pid of pids) {
      try {
        process.kill(Number(pid), Date.now() > deadline ? 'SIGKILL' : 'SIGTERM');
      } catch {
        // exited meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a daemon answers on the socket now. */
function answers(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const s = netConnect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function waitForSocket(path: string, timeoutMs = 15_000): Promise<boolean> {
  return until(() => answers(path), `a daemon to answer on ${path}`, timeoutMs);
}

export function readLog(layout: DataLayout): string {
  return existsSync(layout.logFile) ? readFileSync(layout.logFile, 'utf8') : '';
}

/** A raw LSP-framed connection for sending exactly the bytes a test wants. */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly messages: Array<Record<string, unknown>> = [];
  closed = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly destroy: () => void,
  ) {
    input.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    input.on('close', () => {
      this.closed = true;
      this.wake();
    });
    input.on('error', () => undefined);
    output.on('error', () => undefined);
  }

  /** Straight to the daemon's socket. */
  static open(path: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s: Socket = netConnect(path);
      s.once('connect', () => resolve(new RawConnection(s, s, () => s.destroy())));
      s.once('error', reject);
    });
  }

  /** Through `agentd stdio` (with `args`, e.g. --remote), as an editor talks to the daemon. */
  static stdio(layout: DataLayout, options: { args?: string[]; env?: Record<string, string>; onStderr?: (text: string) => void } = {}): RawConnection {
    const child = spawn(process.execPath, [AGENTD_BIN, 'stdio', ...(options.args ?? [])], {
      env: { ...process.env, AGENTD_HOME: layout.home, ...options.env },
      stdio: ['pipe', 'pipe', options.onStderr ? 'pipe' : 'inherit'],
    });
    child.stderr?.on('data', (chunk: Buffer) => options.onStderr?.(chunk.toString('utf8')));
    return new RawConnection(child.stdout!, child.stdin!, () => child.kill('SIGKILL'));
  }

  private parse(): void {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/Content-Length: (\d+)/i.exec(this.buffer.subarray(0, end).toString())?.[1]);
      if (this.buffer.length < end + 4 + length) return;
      this.messages.push(JSON.parse(this.buffer.subarray(end + 4, end + 4 + length).toString()));
      this.buffer = this.buffer.subarray(end + 4 + length);
      this.wake();
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  sendBytes(body: string | Buffer): void {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
    this.output.write(Buffer.concat([Buffer.from(`Content-Length: ${bytes.length}\r\n\r\n`), bytes]));
  }

  /** Exactly these bytes, header and all; `oneByteAtATime` writes them as that many writes. */
  sendRaw(bytes: Buffer, oneByteAtATime = false): void {
    if (!oneByteAtATime) this.output.write(bytes);
    else for (let i = 0; i < bytes.length; i++) this.output.write(bytes.subarray(i, i + 1));
  }

  /** Stops reading (the daemon's replies pile up on its side), as a client that hangs would. */
  stopReading(): void {
    this.input.pause();
  }

  resumeReading(): void {
    this.input.resume();
  }

  send(message: Record<string, unknown>): void {
    this.sendBytes(JSON.stringify({ jsonrpc: '2.0', ...message }));
  }

  /** Waits for a message matching `test` (already received or still to come). */
  async next(test: (m: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(test);
      if (found) return found;
      if (this.closed) throw new Error('connection closed while waiting');
      if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async request(id: number, method: string, params?: unknown): Promise<Record<string, unknown>> {
    this.send({ id, method, ...(params !== undefined ? { params } : {}) });
    return this.next((m) => m.id === id);
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    return this.next(() => false, timeoutMs).then(
      () => undefined,
      (e: Error) => (this.closed ? undefined : Promise.reject(e)),
    );
  }

  close(): void {
    this.destroy();
  }
}

/**
 * A daemon whose model (the emulator) answers every call with a tool call that needs
 * permission nobody gives: a session's first prompt parks its runner on that
 * question, and later prompts only queue user messages. Tests of the log's mechanics
 * get exact event counts while the real harness runs.
 */
export async function startParkingDaemon(env: Record<string, string> = {}): Promise<TestDaemon & { park(client: AgentdClient): Promise<string> }> {
  const { startModelEmulator, reply } = await import('../../clients/cli/demo/model-emulator.js');
  const emulator = await startModelEmulator({ apiKey: 'test-key', defaultReply: reply.toolUse({ name: 'bash', input: { command: 'true' } }) });
  const daemon = await startDaemon({ env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: 'test-key', ...env } });
  const { SessionCreate, SessionGet, SessionPrompt } = await import('../../protocol/index.js');
  const dispose = daemon.dispose;
  return Object.assign(daemon, {
    async park(client: AgentdClient): Promise<string> {
      const workspace = tempDir('agentd-ws-');
      const { sessionId } = await client.request(SessionCreate, { workspace, permissions: { default: 'ask' } });
      await client.request(SessionPrompt, { sessionId, content: 'park here' });
      await until(async () => (await client.request(SessionGet, { sessionId })).status === 'waiting', `session ${sessionId} to park on its question`);
      return sessionId;
    },
    async dispose() {
      await dispose();
      await emulator.close();
    },
  });
}
