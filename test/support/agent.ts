/** A real daemon wired to a Messages-API emulator, and helpers to drive and inspect sessions. */
import { writeFileSync } from 'node:fs';
import { connect, type AgentdClient } from '../../clients/lib/index.js';
import { SessionCreate, SessionEvents, SessionGet, type Event, type DataLayout, type PermissionDecision, type PermissionQuestion, type SessionCreateParams } from '../../protocol/index.js';
import { startDaemon, tempHome, type TestDaemon } from './daemon.js';
import { tempDir } from './temp.js';
import { until } from './until.js';
import { startModelEmulator, type ModelEmulator } from '../../clients/cli/demo/model-emulator.js';
import { withFixture } from './fixture.js';

export const API_KEY = 'sk-test-key';

export interface AgentRig {
  emulator: ModelEmulator;
  daemon: TestDaemon;
  /** Kills the daemon with SIGKILL and starts a new one on the same data dir and emulator. */
  crashAndRestart(): Promise<TestDaemon>;
  dispose(): Promise<void>;
}

/**
 * `args` go to `agentd daemon` (e.g. ['--isolation-floor', 'namespaces'] for sessions that
 * ask for less than bwrap); `config` is written to its config.json first.
 */
export async function startAgentRig(env: Record<string, string> = {}, args: string[] = [], config?: Record<string, unknown>): Promise<AgentRig> {
  const emulator = await startModelEmulator({ apiKey: API_KEY });
  const daemonEnv = { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY, AGENTD_RETRY_BASE_MS: '20', ...env };
  const layout = tempHome();
  if (config) writeFileSync(layout.config, JSON.stringify(config));
  const rig: AgentRig = {
    emulator,
    daemon: await startDaemon({ layout, env: daemonEnv, args }),
    async crashAndRestart() {
      await rig.daemon.kill('SIGKILL');
      rig.daemon = await startDaemon({ layout, env: daemonEnv, args });
      return rig.daemon;
    },
    async dispose() {
      await rig.daemon.dispose();
      await emulator.close();
    },
  };
  return rig;
}

/** Runs `body` with a fresh rig, disposed whatever happens (a daemon the body restarted too). */
export function withAgentRig(body: (rig: AgentRig) => Promise<void>): Promise<void> {
  return withFixture(startAgentRig(), body);
}

/**
 * A client of the daemon at `layout` (it never starts one) that answers every permission
 * question it is asked with `answer`. It answers only for sessions it controls.
 */
export function answeringClient(layout: DataLayout, clientName: string, answer: (q: PermissionQuestion) => Promise<PermissionDecision>): Promise<AgentdClient> {
  return connect({ layout, autostart: false, clientName, onPermissionRequest: async (q) => ({ decision: await answer(q) }) });
}

export function workspace(): string {
  return tempDir('agentd-ws-');
}

export async function createSession(client: AgentdClient, params: Partial<SessionCreateParams> = {}): Promise<string> {
  const { sessionId } = await client.request(SessionCreate, { workspace: workspace(), permissions: { default: 'allow' }, ...params });
  return sessionId;
}

export async function allEvents(client: AgentdClient, sessionId: string): Promise<Event[]> {
  const events: Event[] = [];
  for (let from: number | undefined = 0; from !== undefined; ) {
    const page: { events: Event[]; next?: number } = await client.request(SessionEvents, { sessionId, from });
    events.push(...page.events);
    from = page.next;
  }
  return events;
}

/** Waits until the session's log has an event passing `test`; returns it. */
export async function waitForEvent(client: AgentdClient, sessionId: string, test: (e: Event) => boolean, timeoutMs = 30_000): Promise<Event> {
  let log: Event[] = [];
  return until(async () => (log = await allEvents(client, sessionId)).find(test), `a matching event in ${sessionId}`, timeoutMs).catch((error: Error) =>
    Promise.reject(new Error(`${error.message}; its log: ${JSON.stringify(log.map((e) => e.type))}`)),
  );
}

/** Waits until the session is idle (no turn pending) and returns its log. */
export async function settle(client: AgentdClient, sessionId: string, timeoutMs = 60_000): Promise<Event[]> {
  await until(async () => (await client.request(SessionGet, { sessionId })).status === 'idle', `session ${sessionId} to settle`, timeoutMs).catch(async (error: Error) =>
    Promise.reject(new Error(`${error.message}; its log: ${JSON.stringify((await allEvents(client, sessionId)).map((e) => e.type))}`)),
  );
  return allEvents(client, sessionId);
}

export const ofType = (events: Event[], type: string) => events.filter((e) => e.type === type);

/**
 * The invariants every log must keep whatever crashed: one result per tool call,
 * no assistant message without the call that produced it, every started turn ended.
 */
export function assertLogInvariants(events: Event[]): string[] {
  const problems: string[] = [];
  const toolUses = new Map<string, number>();
  for (const e of ofType(events, 'assistant.message')) {
    for (const block of e.data.content as Array<{ type: string; id?: string }>) if (block.type === 'tool_use') toolUses.set(block.id!, 0);
  }
  for (const e of ofType(events, 'tool.result')) {
    const id = String(e.data.toolUseId);
    if (!toolUses.has(id)) problems.push(`tool.result for unknown ${id}`);
    else toolUses.set(id, toolUses.get(id)! + 1);
  }
  for (const [id, n] of toolUses) if (n !== 1) problems.push(`tool_use ${id} has ${n} results`);
  let requested = 0;
  for (const e of events) {
    if (e.type === 'model.requested') requested++;
    if (e.type === 'assistant.message') {
      if (requested === 0) problems.push(`assistant.message at ${e.seq} without a model.requested before it`);
      requested = 0;
    }
  }
  const started = new Set(ofType(events, 'turn.started').map((e) => String(e.data.turnId)));
  for (const e of events) if (e.type.startsWith('turn.') && e.type !== 'turn.started') started.delete(String(e.data.turnId));
  for (const id of started) problems.push(`turn ${id} never ended`);
  return problems;
}
