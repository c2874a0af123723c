/**
 * What the network listener costs, one JSON line per figure: the same requests over the
 * unix socket (the baseline) and over wss:// on loopback (TLS, a token, one WebSocket
 * message per request), to one daemon, interleaved so that drift in the machine's load
 * hits both alike.
 *
 * - rpc: a `session/get` round trip (transport and dispatch only)
 * - prompt: a `session/prompt` round trip (answered once the user message is durable)
 * - turn: from sending `session/prompt` to the subscription delivering `turn.completed`
 *   (the model emulator answers a short text), what a user of a remote client waits
 *
 * `AGENTD_BENCH_RUNS` changes the number of samples per figure and path (default 200).
 */
import { pathToFileURL } from 'node:url';
import { SessionGet, SessionPrompt, type Event } from '../protocol/index.js';
import type { AgentdClient } from '../clients/lib/index.js';
import { reply, startModelEmulator } from '../clients/cli/demo/model-emulator.js';
import { API_KEY, createSession } from '../test/support/agent.js';
import { createToken, remoteClient, startListeningDaemon } from '../test/support/remote.js';
import { printFigure } from './log.js';
import { quantile, round } from './ttft/common.js';

const RUNS = Number(process.env.AGENTD_BENCH_RUNS ?? 200);
const WARMUP = 20;

interface Path {
  name: 'unix' | 'wss';
  client: AgentdClient;
  sessionId: string;
  /** Resolves when its subscription has delivered the turn's turn.completed (perhaps already). */
  completed(turnId: string): Promise<void>;
}

async function path(name: Path['name'], client: AgentdClient): Promise<Path> {
  const sessionId = await createSession(client, { title: `bench ${name}` });
  const done = new Set<string>();
  const waiters = new Map<string, () => void>();
  await client.subscribe(sessionId, undefined, {
    onEvents: (events: Event[]) => {
      for (const event of events) {
        if (event.type !== 'turn.completed') continue;
        const turnId = String(event.data.turnId);
        done.add(turnId);
        waiters.get(turnId)?.();
      }
    },
  });
  const completed = (turnId: string) => (done.has(turnId) ? Promise.resolve() : new Promise<void>((resolve) => waiters.set(turnId, resolve)));
  return { name, client, sessionId, completed };
}

const measures = {
  rpc: async (p: Path) => {
    const t0 = performance.now();
    await p.client.request(SessionGet, { sessionId: p.sessionId });
    return performance.now() - t0;
  },
  prompt: async (p: Path) => {
    const t0 = performance.now();
    const { turnId } = await p.client.request(SessionPrompt, { sessionId: p.sessionId, content: 'ack' });
    const elapsed = performance.now() - t0;
    // Let the turn end before the next sample, so that turns do not pile up.
    await p.completed(turnId);
    return elapsed;
  },
  turn: async (p: Path) => {
    const t0 = performance.now();
    const { turnId } = await p.client.request(SessionPrompt, { sessionId: p.sessionId, content: 'hello' });
    await p.completed(turnId);
    return performance.now() - t0;
  },
};

export async function benchRemote(): Promise<void> {
  const emulator = await startModelEmulator({ apiKey: API_KEY, defaultReply: reply.text('ok') });
  const daemon = await startListeningDaemon({ env: { ANTHROPIC_BASE_URL: emulator.url, ANTHROPIC_API_KEY: API_KEY } });
  try {
    const token = await createToken(daemon.layout, ['--controller', '--name', 'bench']);
    const paths = [await path('unix', await daemon.client()), await path('wss', await remoteClient(daemon, token))];
    for (const [figure, measure] of Object.entries(measures)) {
      const samples: Record<Path['name'], number[]> = { unix: [], wss: [] };
      for (let i = 0; i < WARMUP + RUNS; i++) {
        for (const p of i % 2 === 0 ? paths : [...paths].reverse()) {
          const ms = await measure(p);
          if (i >= WARMUP) samples[p.name].push(ms);
        }
      }
      const [wss, unix] = [samples.wss, samples.unix];
      printFigure({
        bench: `remote.${figure}`,
        unit: 'ms',
        p50: round(quantile(wss, 0.5)),
        p99: round(quantile(wss, 0.99)),
        n: wss.length,
        baseline: 'the same over the unix socket, same daemon, interleaved',
        baselineP50: round(quantile(unix, 0.5)),
        baselineP99: round(quantile(unix, 0.99)),
        overheadP50: round(quantile(wss, 0.5) - quantile(unix, 0.5)),
      });
    }
    for (const p of paths) p.client.close();
  } finally {
    await daemon.dispose();
    await emulator.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await benchRemote();
