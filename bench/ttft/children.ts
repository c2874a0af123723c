import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import {
  PROTOCOL_VERSION,
} from '../../protocol/index.js';
import { API_KEY, REPLY_TEXT, THIS_FILE, sleep } from './common.js';

// ---------------------------------------------------------------- the emulator, in a child process

/** `--emulator`: one Messages-API emulator for the whole bench; talks to the parent over IPC. */
export async function emulatorChild(): Promise<void> {
  const { startModelEmulator, reply, lastUserText } = await import('../../clients/cli/demo/model-emulator.js');
  const emu = await startModelEmulator({
    apiKey: API_KEY,
    // The same script for every caller: a prompt starting "tool:" gets a read_file call
    // first; everything else (and the reply after a tool result) is a short streamed text.
    defaultReply: (req) => {
      const messages: any[] = req.body?.messages ?? [];
      const last = messages.at(-1);
      const afterTool = Array.isArray(last?.content) && last.content.some((b: any) => b?.type === 'tool_result');
      if (!afterTool && lastUserText(req.body).startsWith('tool:')) {
        return reply.toolUse({ name: 'read_file', input: { path: 'hello.txt' } });
      }
      return reply.text(REPLY_TEXT, { chunks: 5, chunkDelayMs: 2 });
    },
  });
  process.on('message', async (m: { id: number; op: string; n?: number }) => {
    try {
      let result: unknown;
      if (m.op === 'count') result = emu.requests.length;
      else if (m.op === 'body') result = emu.requests[m.n!]?.body;
      else if (m.op === 'time') result = emu.requests[m.n!]?.time;
      else if (m.op === 'wait') result = (await emu.waitForRequests(m.n!, 60_000)).at(-1)?.time;
      else if (m.op === 'trim') result = (emu.requests.splice(0, emu.requests.length), 0);
      else if (m.op === 'errors') result = emu.errors.map((e) => e.message);
      process.send!({ id: m.id, result });
    } catch (error) {
      process.send!({ id: m.id, error: String(error) });
    }
  });
  process.on('disconnect', () => void emu.close().then(() => process.exit(0)));
  process.send!({ id: 0, result: emu.url });
}

export class EmulatorHandle {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly pid: number;
  private constructor(private readonly child: ChildProcess, readonly url: string) {
    this.pid = child.pid!;
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.result);
    });
  }

  static async start(): Promise<EmulatorHandle> {
    const child = fork(THIS_FILE, ['--emulator'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (m: { result: string }) => resolve(m.result));
      child.once('exit', (code) => reject(new Error(`emulator exited (${code})`)));
    });
    return new EmulatorHandle(child, url);
  }

  call<T>(op: string, n?: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, n });
    });
  }

  count(): Promise<number> {
    return this.call('count');
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.disconnect();
      setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
    });
  }
}

// ---------------------------------------------------------------- event-loop delay probes

/**
 * Inside the daemon: a preload (NODE_OPTIONS=--import) that only runs in `agentd daemon`
 * and keeps a perf_hooks event-loop delay histogram; SIGUSR2 writes it out and resets it.
 */
export const ELD_PRELOAD = `
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';
import { writeFileSync, renameSync } from 'node:fs';
const file = process.env.AGENTD_BENCH_ELD_FILE;
if (file && process.argv.includes('daemon')) {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  // GC pauses by kind, to tell the event loop's long stalls that are collections from those that are not.
  let gc = { minor: [0, 0, 0], major: [0, 0, 0], other: [0, 0, 0] }; // count, total ms, max ms
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR ? 'minor' : entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 'major' : 'other';
      const g = gc[kind];
      g[0]++;
      g[1] += entry.duration;
      g[2] = Math.max(g[2], entry.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('SIGUSR2', () => {
    // A sample is the time between ticks of a 5 ms timer: the delay is what exceeds 5 ms.
    const ms = (ns) => Math.max(0, Math.round((ns - 5e6) / 1e4) / 100);
    const m = process.memoryUsage();
    const mb = (b) => Math.round(b / 104857.6) / 10;
    const memory = { heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal), externalMB: mb(m.external), arrayBuffersMB: mb(m.arrayBuffers) };
    const r = (x) => Math.round(x * 100) / 100;
    const gcPauses = Object.fromEntries(Object.entries(gc).map(([k, [n, total, max]]) => [k, { n, totalMs: r(total), maxMs: r(max) }]));
    writeFileSync(file + '.tmp', JSON.stringify({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean), samples: h.count, ...memory, gcPauses }));
    renameSync(file + '.tmp', file);
    h.reset();
    gc = { minor: [0, 0, 0], major: [0, 0, 0], other: [0, 0, 0] };
  });
}
`;

export interface EldSnapshot {
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  samples: number;
  /** Collections while measuring, by kind: how many, their total and their longest pause. */
  gcPauses?: Record<'minor' | 'major' | 'other', { n: number; totalMs: number; maxMs: number }>;
}

export async function eldSnapshot(pid: number, file: string): Promise<EldSnapshot> {
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 500 && !existsSync(file); i++) await sleep(5);
  const snap = JSON.parse(readFileSync(file, 'utf8')) as EldSnapshot;
  rmSync(file, { force: true });
  return snap;
}

/**
 * Outside the daemon: `--probe SOCKET` dials the daemon, initializes, then sends one
 * request for an unknown method every 20 ms (answered at once by the RPC layer, no I/O)
 * and keeps the round trips; the parent asks for them (and a reset) over IPC.
 */
export async function probeChild(socketPath: string): Promise<void> {
  const socket = netConnect(socketPath);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffer = Buffer.alloc(0);
  const pending = new Map<number, () => void>();
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, end).toString())?.[1]);
      if (buffer.length < end + 4 + length) return;
      const msg = JSON.parse(buffer.subarray(end + 4, end + 4 + length).toString()) as { id?: number };
      buffer = buffer.subarray(end + 4 + length);
      if (typeof msg.id === 'number') {
        pending.get(msg.id)?.();
        pending.delete(msg.id);
      }
    }
  });
  let id = 0;
  const send = (method: string, params?: unknown): Promise<void> => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: ++id, method, ...(params ? { params } : {}) });
    return new Promise((resolve) => {
      pending.set(id, resolve);
      socket.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  };
  await send('initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'bench-probe' }, capabilities: {} });
  let samples: number[] = [];
  process.on('message', (m: { id: number }) => {
    process.send!({ id: m.id, result: samples });
    samples = [];
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ id: 0, result: 'ready' });
  for (;;) {
    const t = performance.now();
    await send('bench/ping');
    samples.push(performance.now() - t);
    await sleep(20);
  }
}

export class ProbeHandle {
  private nextId = 1;
  private constructor(private readonly child: ChildProcess) {}
  static async start(socketPath: string): Promise<ProbeHandle> {
    const child = fork(THIS_FILE, ['--probe', socketPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`probe exited (${code})`)));
    });
    return new ProbeHandle(child);
  }
  /** Round trips since the last take (and starts a new window). */
  take(): Promise<number[]> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const on = (m: { id: number; result: number[] }) => {
        if (m.id !== id) return;
        this.child.off('message', on);
        resolve(m.result);
      };
      this.child.on('message', on);
      this.child.send({ id });
    });
  }
  close(): void {
    if (this.child.connected) this.child.disconnect();
    this.child.kill();
  }
}
