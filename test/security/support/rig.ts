/**
 * The containment suite's rig: a real daemon (as root, or as an ordinary user through setpriv)
 * in the default layout (a home dir as the workspace, the data dir at <home>/.agentd), driven
 * over its socket with raw JSON-RPC, and a model emulator that answers each session with the
 * tool calls a test scripts for it. Every attack runs as a bash call the model makes.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataLayout, PROTOCOL_VERSION, type DataLayout, type Event, type SessionCreateParams } from '../../../protocol/index.js';
import { probeIsolation } from '../../../sandbox/provider.js';
import type { IsolationLevel } from '../../../sandbox/types.js';
import { RawConnection, startDaemon, type TestDaemon } from '../../support/daemon.js';
import { tempDir } from '../../support/temp.js';
import { until } from '../../support/until.js';
import { reply, startModelEmulator, type ModelEmulator, type RecordedRequest, type Reply } from '../../../clients/cli/demo/model-emulator.js';

export const API_KEY = 'sk-containment-test';

export interface Principal {
  label: 'root' | 'user';
  uid: number;
  gid: number;
  /** How the daemon is started as this principal. */
  prefix: string[];
}

const NOBODY = 65534;
/** The isolation probe, run as each principal: also what tells whether that principal can read this checkout. */
const PROBE_MODULE = fileURLToPath(new URL('../../../sandbox/isolation/probe.js', import.meta.url));
const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];

/** A temp dir (removed at exit at the latest) that `principal` owns: its TMPDIR. */
function tempDirOf(principal: Principal, prefix: string): string {
  const dir = tempDir(prefix);
  if (principal.prefix.length) chownSync(dir, principal.uid, principal.gid);
  return dir;
}

/**
 * The isolation levels (of bwrap and namespaces) that work for a daemon run as `principal`.
 * A probe that cannot run at all fails the suite: a principal must never drop out silently.
 */
function levelsFor(principal: Principal): Promise<IsolationLevel[]> | IsolationLevel[] {
  if (principal.prefix.length === 0) return probeIsolation().then((r) => (['bwrap', 'namespaces'] as const).filter((l) => r.levels[l].ok));
  const script = `import(${JSON.stringify(PROBE_MODULE)}).then((m) => m.probeIsolation()).then((r) => console.log(JSON.stringify(['bwrap', 'namespaces'].filter((l) => r.levels[l].ok))))`;
  const env = { ...process.env, TMPDIR: tempDirOf(principal, 'agentd-probe-tmp-') };
  const out = spawnSync(principal.prefix[0]!, [...principal.prefix.slice(1), process.execPath, '-e', script], { cwd: '/', env, encoding: 'utf8', timeout: 60_000 });
  try {
    return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as IsolationLevel[];
  } catch {
    throw new Error(`cannot probe the isolation levels as ${principal.label} (uid ${principal.uid}): ${out.error?.message ?? ''} ${out.stderr}`);
  }
}

export interface SecurityCase {
  principal: Principal;
  level: IsolationLevel;
  /** Sandboxes come from a warm pool of this size (0: each one started cold). */
  pool: number;
  /** For test titles: "bwrap, daemon as root, pooled sandboxes". */
  where: string;
}

/** The pool of a pooled case: small, so that it is used up and refilled while a file runs. */
const POOL = 2;

/**
 * Every (principal, level) this machine can run: as root (the CI case) and, when the tests run
 * as root, setpriv is there and nobody can read the checkout, as the ordinary user nobody;
 * otherwise as the current user.
 * As root at the bwrap level, once more with a warm pool, so every attack also runs in sandboxes
 * started before their workspace was bound to them.
 */
export async function securityMatrix(): Promise<SecurityCase[]> {
  const uid = process.getuid?.() ?? 0;
  const principals: Principal[] = [{ label: uid === 0 ? 'root' : 'user', uid, gid: process.getgid?.() ?? 0, prefix: [] }];
  if (uid === 0 && spawnSync('setpriv', ['--version']).status === 0) {
    // The daemon runs from this checkout: as nobody only where nobody can read it. A checkout in
    // root's own home (0700) cannot be, and the cases as an ordinary user say so, loudly.
    if (spawnSync(asNobody[0]!, [...asNobody.slice(1), 'test', '-r', PROBE_MODULE]).status === 0) principals.push({ label: 'user', uid: NOBODY, gid: NOBODY, prefix: asNobody });
    else process.stderr.write(`security suite: NOT run as an ordinary user (uid ${NOBODY}): it cannot read this checkout (${PROBE_MODULE}); clone it where others can read it (not under /root) to run those cases too\n`);
  }
  const out: SecurityCase[] = [];
  for (const principal of principals) {
    for (const level of await levelsFor(principal)) {
      out.push({ principal, level, pool: 0, where: `${level}, daemon as ${principal.label}` });
      if (principal.uid === 0 && level === 'bwrap') out.push({ principal, level, pool: POOL, where: `${level}, daemon as ${principal.label}, pooled sandboxes` });
    }
  }
  return out;
}

export interface ToolOutcome {
  text: string;
  isError: boolean;
  errorKind?: string;
}

export interface RpcReply {
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
}

export interface SecurityRig {
  principal: Principal;
  level: IsolationLevel;
  /** The daemon's warm pool size: each tool call then waits for a pooled sandbox and checks it got one. */
  pool: number;
  /** The fake home dir: the default layout's workspace. */
  home: string;
  layout: DataLayout;
  daemon: TestDaemon;
  emulator: ModelEmulator;
  rpc(method: string, params?: unknown): Promise<RpcReply>;
  /** A new directory owned by the daemon's user (a workspace of its own). */
  dir(name: string): string;
  /** Creates a session at the rig's level (default workspace: the home dir); throws on an error reply. */
  session(params?: Partial<SessionCreateParams>): Promise<string>;
  /** One turn in which the model runs `command` with bash; the tool's result. */
  bash(sessionId: string, command: string, timeoutMs?: number): Promise<ToolOutcome>;
  /** Starts such a turn and returns at once (the seq of its user message). */
  start(sessionId: string, command: string, timeoutMs?: number): Promise<number>;
  /** The last tool result after `seq`, once the session has settled. */
  result(sessionId: string, seq: number): Promise<ToolOutcome>;
  /** session/fork at the head; the fork answers to the same scripted replies as its source. */
  fork(sessionId: string): Promise<RpcReply>;
  events(sessionId: string): Promise<Event[]>;
  settle(sessionId: string): Promise<Event[]>;
  dispose(): Promise<void>;
}

/** The tag in a session's system prompt that routes the emulator's replies to it. */
const tagOf = (request: RecordedRequest) => /\[session-tag ([0-9a-f]+)\]/.exec(JSON.stringify(request.body?.system ?? ''))?.[1];

export async function startSecurityRig(
  principal: Principal,
  level: IsolationLevel,
  options: { env?: Record<string, string>; args?: string[]; prefix?: string[]; pool?: number } = {},
): Promise<SecurityRig> {
  const pool = options.pool ?? 0;
  const queues = new Map<string, Reply[]>();
  const route: Reply = (request) => queues.get(tagOf(request) ?? '')?.shift() ?? { kind: 'text', text: 'nothing more to do' };
  const emulator = await startModelEmulator({ apiKey: API_KEY, defaultReply: route });
  const base = tempDirOf(principal, 'agentd-containment-');
  const home = join(base, 'home');
  mkdirSync(home);
  const layout = dataLayout(join(home, '.agentd'));
  mkdirSync(layout.home, { mode: 0o700 });
  const own = (path: string) => {
    if (principal.prefix.length) chownSync(path, principal.uid, principal.gid);
    return path;
  };
  // The daemon's own temp dir (the run's is not writable by another user).
  const daemonTmp = join(base, 'tmp');
  mkdirSync(daemonTmp);
  for (const path of [home, layout.home, daemonTmp]) own(path);
  const floor = level === 'bwrap' ? [] : ['--isolation-floor', level];
  const daemon = await startDaemon({
    layout,
    env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20', HOME: home, TMPDIR: daemonTmp, AGENTD_SANDBOX_POOL: String(pool), ...options.env },
    args: [...floor, ...(options.args ?? [])],
    prefix: [...principal.prefix, ...(options.prefix ?? [])],
  });
  const raw = await RawConnection.open(layout.socket);
  let nextId = 1;
  const rpc = async (method: string, params?: unknown) => (await raw.request(nextId++, method, params)) as RpcReply;
  await rpc('initialize', { protocolVersion: PROTOCOL_VERSION, clientInfo: { name: 'containment-suite' } });
  const tags = new Map<string, string>();

  const events = async (sessionId: string): Promise<Event[]> => {
    const out: Event[] = [];
    for (let from: number | undefined = 0; from !== undefined; ) {
      const page = (await rpc('session/events', { sessionId, from })).result as { events: Event[]; next?: number };
      out.push(...page.events);
      from = page.next;
    }
    return out;
  };
  const settle = async (sessionId: string): Promise<Event[]> => {
    const idle = async () => ((await rpc('session/get', { sessionId })).result as { status: string }).status === 'idle';
    await until(idle, `session ${sessionId} to settle`, 120_000).catch(async (error: Error) =>
      Promise.reject(new Error(`${error.message}; its log: ${JSON.stringify((await events(sessionId)).map((e) => e.type))}`)),
    );
    return events(sessionId);
  };

  /** With a pool: waits until it is full again, so the next sandbox comes from it. */
  const poolFull = () =>
    until(
      async () => {
        const state = ((await rpc('daemon/status', {})).result as { sandboxPool?: { size: number; ready: number; disabled?: string } }).sandboxPool;
        if (!state) throw new Error('the daemon reports no sandbox pool');
        if (state.disabled) throw new Error(`the daemon's sandbox pool is off: ${state.disabled}`);
        return state.ready >= state.size;
      },
      'the sandbox pool to fill',
      120_000,
    );

  const rig: SecurityRig = {
    principal,
    level,
    pool,
    home,
    layout,
    daemon,
    emulator,
    rpc,
    dir(name) {
      const path = join(base, `${name}-${randomBytes(3).toString('hex')}`);
      mkdirSync(path);
      return own(path);
    },
    async session(params = {}) {
      const tag = randomBytes(8).toString('hex');
      const created = await rpc('session/create', {
        workspace: home,
        permissions: { default: 'allow' },
        sandbox: { isolation: level },
        ...params,
        system: `[session-tag ${tag}]`,
      });
      if (created.error) throw new Error(`session/create failed: ${JSON.stringify(created.error)}`);
      const sessionId = String(created.result!.sessionId);
      tags.set(sessionId, tag);
      return sessionId;
    },
    async start(sessionId, command, timeoutMs) {
      const tag = tags.get(sessionId)!;
      const input = timeoutMs === undefined ? { command } : { command, timeout_ms: timeoutMs };
      queues.set(tag, [...(queues.get(tag) ?? []), reply.toolUse({ name: 'bash', input }), reply.text('done')]);
      if (pool > 0) await poolFull();
      const prompted = await rpc('session/prompt', { sessionId, content: 'run it' });
      if (prompted.error) throw new Error(`session/prompt failed: ${JSON.stringify(prompted.error)}`);
      return Number(prompted.result!.seq);
    },
    async result(sessionId, seq) {
      const settled = await settle(sessionId);
      const last = settled.filter((e) => e.type === 'tool.result' && e.seq > seq).at(-1);
      if (!last) throw new Error(`no tool result after seq ${seq}`);
      // The pooled case is only worth its name if the attacks ran in pooled sandboxes.
      const cold = settled.filter((e) => e.type === 'sandbox.provisioned' && e.data.pooled !== true);
      if (pool > 0 && cold.length) throw new Error(`session ${sessionId} got a cold sandbox from a daemon with a pool: ${JSON.stringify(cold.map((e) => e.data))}`);
      const text = (last.data.content as Array<{ type: string; text?: string }>).map((c) => c.text ?? '').join('\n');
      return { text, isError: last.data.isError === true, ...(last.data.errorKind ? { errorKind: String(last.data.errorKind) } : {}) };
    },
    async bash(sessionId, command, timeoutMs) {
      return rig.result(sessionId, await rig.start(sessionId, command, timeoutMs));
    },
    async fork(sessionId) {
      const head = Number(((await rpc('session/get', { sessionId })).result as { headSeq: number }).headSeq);
      const forked = await rpc('session/fork', { sessionId, at: head });
      if (forked.result) tags.set(String(forked.result.sessionId), tags.get(sessionId)!);
      return forked;
    },
    events,
    settle,
    async dispose() {
      raw.close();
      await daemon.dispose();
      await emulator.close();
      rmSync(base, { recursive: true, force: true });
    },
  };
  return rig;
}
