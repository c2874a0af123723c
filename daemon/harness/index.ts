import type Anthropic from '@anthropic-ai/sdk';
import { realpath } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Server } from 'node:net';
import type { SessionCreateParams, UsageTotals } from '../../protocol/index.js';
import type { SandboxProvider, SandboxSpec } from '../../sandbox/types.js';
import { fencedLog } from '../log/fenced.js';
import type { Lease, SessionLeases } from '../log/leases.js';
import type { SessionLog } from '../log/session-log.js';
import type { HarnessSession } from './deps.js';
import { anthropicSdk, ModelFailure, type RetryPolicy } from './model.js';
import { RemoteMcpServers } from './remote-mcp.js';
import { SessionRunner } from './runner.js';
import type { SpeculativeInput } from './session-writer.js';
import type { RunnerDeps } from './deps.js';
import { BorrowedSlot, SandboxSlot, type ToolSlot } from './sandbox-slot.js';
import { childTurnId, firstTurnEnd, type ChildOutcome, type ChildSpec } from './agent-tool.js';
import type { PriceTable } from './usage.js';
import { BudgetLedger } from './budget-ledger.js';
import { offeredTools, remoteServerSpecs, remoteTools, sandboxNotices, systemPrompt } from './session-setup.js';

/** The session's proxy as the harness hands it to the sandbox: what serves the sandbox's listener, and the CA the sandbox trusts. */
export interface ProxyEndpoint {
  serve(listener: Server): void;
  ca?: string;
  close(): Promise<void>;
}

export interface HarnessSettings {
  defaultModel: string;
  /** The model API's base URL, when not Anthropic's. */
  baseUrl?: string;
  maxTokens: number;
  contextBudget: number;
  retry: RetryPolicy;
  prices: PriceTable;
  /**
   * `elsewhere`: this daemon runs no sub-agent session, its own children included; other
   * daemons sharing the log take them up (AGENTD_SUBAGENTS, for daemons kept for parents).
   */
  subAgents: 'here' | 'elsewhere';
}

export interface HarnessDeps extends Omit<RunnerDeps, 'model' | 'retry' | 'runChild' | 'budget'> {
  /** Creates a sub-agent session (its record, session.created and its prompt) unless it exists. */
  createChild(spec: ChildSpec): Promise<void>;
  /** Asks the other daemons sharing the log to stop this turn of the session, wherever it runs. */
  interruptElsewhere?(sessionId: string, turnId: string): void;
  provider: SandboxProvider;
  /** What the daemon decides of every sandbox: hidden paths, the isolation floor, the limits. */
  sandboxSpec(request: SessionCreateParams['sandbox']): Pick<SandboxSpec, 'hide' | 'minimumIsolation' | 'limits'>;
  /** The API key: the environment's, else the vault's ANTHROPIC_API_KEY. */
  apiKey(): Promise<string | undefined>;
  /** The session's record, or undefined for an unknown session. */
  session(sessionId: string): Promise<HarnessSession | undefined>;
  /**
   * The Authorization header value for a remote MCP server at `url` from the named vault
   * credential (undefined when there is none): the daemon forms it, the harness passes it on.
   */
  remoteAuthorization(credential: string, url: string): Promise<string | undefined>;
  /**
   * Opens the session's proxy (only its own credentials are served, and the egress proxy as
   * its network policy allows); its socket goes into the sandbox.
   */
  openProxy(sessionId: string, credentials: readonly string[]): Promise<ProxyEndpoint>;
  settings: HarnessSettings;
  /**
   * Set when other daemons share the session log: a session runs here only while this
   * daemon holds its lease, and sessions whose holder died are taken over.
   */
  leases?: SessionLeases;
}

/** How often a daemon looks for sessions whose lease holder died, at most. */
const ORPHAN_SCAN_MAX_MS = 1000;

/** Interrupts remembered for runners not made yet (see interrupt). */
const INTERRUPTS_AHEAD_MAX = 1000;

/** A runner with no work for this long is dropped with its sandbox; its log wakes a new one. */
const IDLE_EVICT_MS = 5 * 60_000;
/** New sessions get a runner ahead of their first prompt only while fewer runners than this exist (a burst of creates holds no more). */
const PREPARE_NEW_MAX = 64;

/** How long an eager provision waits for a prompt sent right after its session/create. */
const EAGER_GRACE_MS = 20;

/**
 * The brains: one SessionRunner per session with work to do. Stateless between
 * runs: every runner starts from the log (wake), so a crash anywhere loses nothing.
 */
export class Harness {
  private readonly runners = new Map<string, SessionRunner>();
  private readonly making = new Map<string, Promise<SessionRunner>>();
  private readonly idleTimers = new Map<string, NodeJS.Timeout>();
  /** Each session's proxy, once its first sandbox asked for it. */
  private readonly proxies = new Map<string, Promise<ProxyEndpoint>>();
  /** The budget ledger of each session tree run here, by its root session. */
  private readonly ledgers = new Map<string, BudgetLedger>();
  /** Turns to stop as they start, by session, for runners not made yet (a sub-agent whose parent was interrupted). */
  private readonly interruptsAhead = new Map<string, string>();
  private client: { key: string; api: Anthropic } | undefined;
  private stopping = false;
  /** Leases held, by session (with `deps.leases` only). */
  private readonly held = new Map<string, Lease>();
  private readonly scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private readonly scanEveryMs: number = 0;
  /** The last scan for orphaned sessions that finished, and how (for /readyz). */
  private lastScan: { at: number; error?: string } | undefined;

  constructor(private readonly deps: HarnessDeps) {
    if (deps.leases) {
      const every = Math.min(ORPHAN_SCAN_MAX_MS, Math.max(50, Math.floor(deps.leases.ttlMs / 4)));
      this.scanEveryMs = every;
      this.scanTimer = setInterval(() => void this.adoptOrphans(), every);
      this.scanTimer.unref();
      void this.adoptOrphans();
    }
  }

  /** What this session's harness writes with (and the egress proxy, for its network events): fenced by its lease when leases are in use. */
  writerLog(sessionId: string): SessionLog {
    const { leases, log } = this.deps;
    return leases ? fencedLog(log, leases, () => this.held.get(sessionId)) : log;
  }

  private async model(): Promise<Anthropic> {
    const key = await this.deps.apiKey();
    if (!key) {
      throw new ModelFailure('no API key: set ANTHROPIC_API_KEY in the daemon\'s environment or store it with `agentd vault set ANTHROPIC_API_KEY` (or try `agentd demo`, which needs none)');
    }
    if (this.client?.key !== key) {
      const Sdk = await anthropicSdk();
      this.client = { key, api: new Sdk({ apiKey: key, maxRetries: 0, ...(this.deps.settings.baseUrl ? { baseURL: this.deps.settings.baseUrl } : {}) }) };
    }
    return this.client.api;
  }

  /** The session's runner; made once however many ask at the same time. */
  private runner(sessionId: string): Promise<SessionRunner> {
    const existing = this.runners.get(sessionId);
    if (existing) return Promise.resolve(existing);
    let making = this.making.get(sessionId);
    if (!making) {
      making = this.makeRunner(sessionId).finally(() => this.making.delete(sessionId));
      this.making.set(sessionId, making);
    }
    return making;
  }

  private async makeRunner(sessionId: string): Promise<SessionRunner> {
    const record = await this.deps.session(sessionId);
    if (!record) throw new Error(`unknown session ${sessionId}`);
    const { logger } = this.deps;
    const log = this.writerLog(sessionId);
    const parentId = record.parent?.sessionId;
    // A sub-agent works in its parent's sandbox (and through its parent's credential proxy).
    // With leases, the parent's slot is here only while this daemon runs the parent.
    const parentSlot = async (id: string) => (this.deps.leases && !this.held.has(id) ? undefined : (await this.runner(id)).slot);
    const slot: ToolSlot = parentId ? new BorrowedSlot(() => parentSlot(parentId), async () => this.ownSlot(record, log)) : this.ownSlot(record, log);
    const remote = new RemoteMcpServers(await remoteServerSpecs(record, this.deps.remoteAuthorization));
    const runner = new SessionRunner(
      { ...this.deps, log, model: () => this.model(), retry: this.deps.settings.retry, runChild: (spec, signal) => this.runChild(spec, signal), budget: this.ledger(parentId ?? sessionId).for(sessionId) },
      {
        sessionId,
        // As the sandbox's tools see it: they resolve paths against its real path.
        workspace: await realpath(record.workspace).catch(() => record.workspace),
        model: record.model ?? this.deps.settings.defaultModel,
        maxTokens: this.deps.settings.maxTokens,
        system: systemPrompt(record),
        ...(record.config.permissions ? { permissions: record.config.permissions } : {}),
        contextBudget: record.config.context?.budgetTokens ?? this.deps.settings.contextBudget,
        tools: [...(await offeredTools(record, this.deps.provider.builtinTools, slot, this.deps.log)), ...(await remoteTools(record, remote, logger))],
        usage: record.usage,
        ...(parentId ? { parentSessionId: parentId } : {}),
        prices: this.deps.settings.prices,
      },
      slot,
      remote,
    );
    this.runners.set(sessionId, runner);
    const ahead = this.interruptsAhead.get(sessionId);
    this.interruptsAhead.delete(sessionId);
    if (ahead) runner.interrupt(ahead);
    return runner;
  }

  /**
   * The tree's ledger, in its root's log (a sub-agent's parent is the root: sub-agents start
   * none). Written unfenced: sub-agents of one tree may run on other daemons than the root.
   */
  private ledger(rootId: string): BudgetLedger {
    let ledger = this.ledgers.get(rootId);
    if (!ledger) {
      ledger = new BudgetLedger(this.deps.log, rootId, async () => (await this.deps.session(rootId))?.config.budget);
      this.ledgers.set(rootId, ledger);
    }
    return ledger;
  }

  private ownSlot(record: HarnessSession, log: SessionLog): SandboxSlot {
    const { sessionId } = record;
    const stdioServers = (record.config.mcpServers ?? []).flatMap((s) => ('command' in s ? [s] : []));
    // Every sandbox gets the proxy: the egress proxy is its way to the network, as its policy
    // allows. It is opened with the first sandbox, so a session that runs no tool has none.
    const spec = async (): Promise<SandboxSpec> => {
      const proxy = await this.proxy(sessionId, record.config.credentials ?? []);
      return {
        sessionId,
        workspace: record.workspace,
        isolation: record.config.sandbox?.isolation ?? 'auto',
        ...this.deps.sandboxSpec(record.config.sandbox),
        mcpServers: stdioServers,
        proxy: { serve: (listener) => proxy.serve(listener) },
        ...(proxy.ca ? { proxyCa: proxy.ca } : {}),
      };
    };
    return new SandboxSlot(this.deps.provider, spec, sandboxNotices(record, log, this.deps.logger));
  }

  /**
   * Runs a sub-agent for its parent's `agent` call: creates its session unless it exists
   * (a call resumed after a crash finds it), runs it, and resolves when its turn ends.
   * An interrupt of the parent's turn interrupts the sub-agent too; a stop or a drain
   * leaves it be, for the next daemon to carry on.
   */
  private async runChild(spec: ChildSpec, signal: AbortSignal): Promise<ChildOutcome> {
    const { childSessionId } = spec;
    await this.deps.createChild(spec);
    const cascade = () => {
      if (signal.reason !== 'interrupt') return;
      // Here, or on whichever daemon runs it (or will: a turn not started yet stops as it starts).
      const turnId = childTurnId(spec.toolUseId);
      this.interrupt(childSessionId, turnId);
      this.deps.interruptElsewhere?.(childSessionId, turnId);
    };
    if (signal.aborted) cascade();
    signal.addEventListener('abort', cascade, { once: true });
    try {
      const ended = firstTurnEnd(this.deps.log, childSessionId, signal);
      ended.catch(() => undefined); // awaited below; a kick that throws first must not leave it unhandled
      // Not run here: queued, it is taken up by another daemon (see adoptOrphans).
      if (this.deps.settings.subAgents === 'here') await this.kick(childSessionId);
      return await ended;
    } finally {
      signal.removeEventListener('abort', cascade);
    }
  }

  /** The session's proxy, opened once however many ask at the same time (again after a failure). */
  private proxy(sessionId: string, credentials: readonly string[]): Promise<ProxyEndpoint> {
    let endpoint = this.proxies.get(sessionId);
    if (!endpoint) {
      const opening = this.deps.openProxy(sessionId, credentials);
      opening.catch(() => this.proxies.get(sessionId) === opening && this.proxies.delete(sessionId));
      this.proxies.set(sessionId, (endpoint = opening));
    }
    return endpoint;
  }

  /** A session was created: its runner is made while its first prompt is still to come (up to a bound). */
  prepareNew(sessionId: string): void {
    if (this.runners.size + this.making.size < PREPARE_NEW_MAX) this.prepare(sessionId);
  }

  /**
   * A prompt is on its way to the log: the runner is made and its checkpoint read
   * meanwhile, so the first model call waits for the prompt's fsync and nothing else.
   * Without leases only (with them, a runner is made once the lease is held).
   */
  prepare(sessionId: string): void {
    if (this.stopping || this.deps.leases) return;
    void this.runner(sessionId)
      .then((runner) => {
        runner.prepare();
        // Dropped after a while if no kick comes (the prompt failed): a kick clears this.
        if (!runner.busy) this.evictWhenIdle(sessionId, runner);
      })
      .catch(() => undefined); // the kick that follows reports it
  }

  /**
   * A prompt's user message has its seq but is not durable yet: an idle runner may start
   * its turn now, the model call leaving during the fsync (single-writer logs only: a
   * shared log's lease hand-over reads a status that only durable writes set).
   */
  speculate(sessionId: string, input: SpeculativeInput): void {
    input.durable.catch(() => undefined); // the prompt reports a failed append
    if (this.deps.leases || this.deps.log.supports.sharedWriters) return;
    // The kick after the append reports what goes wrong.
    void this.start(sessionId, false, input).catch(() => undefined);
  }

  /** A user message was appended: run the session's pending turns. */
  async kick(sessionId: string): Promise<void> {
    await this.start(sessionId, false);
  }

  /** On daemon start: carry on every session whose log ends mid-turn. */
  async wake(sessionId: string): Promise<void> {
    await this.start(sessionId, true);
  }

  private async start(sessionId: string, woke: boolean, input?: SpeculativeInput): Promise<void> {
    if (this.stopping) return;
    clearTimeout(this.idleTimers.get(sessionId));
    // Left to the daemons that run sub-agents.
    if (this.deps.settings.subAgents === 'elsewhere' && (await this.deps.session(sessionId))?.parent) return;
    let usage: UsageTotals | undefined;
    if (this.deps.leases) {
      // Lease and usage in parallel: one round trip less before the first token. The
      // usage is re-read because other daemons may have run turns of this session.
      const [held, record] = await Promise.all([this.hold(sessionId), this.deps.session(sessionId)]);
      // Held by another daemon: it runs the session, and sees in the log what was appended.
      if (!held) return;
      usage = record?.usage;
    }
    const runner = await this.runner(sessionId);
    if (usage) runner.setUsage(usage);
    void runner
      .kick(woke, input)
      .then(() => this.ran(sessionId, runner))
      .catch((error: unknown) => this.deps.logger.log('error', 'after a run of the session', { sessionId, error: String(error) }));
  }

  /** Takes the session's lease unless another daemon holds it; a lost lease stops the session here. */
  private async hold(sessionId: string): Promise<boolean> {
    const lease = await this.deps.leases!.acquire(sessionId);
    if (!lease) return false;
    if (this.held.get(sessionId) !== lease) {
      this.held.set(sessionId, lease);
      lease.lost.addEventListener('abort', () => this.leaseLost(sessionId, lease), { once: true });
    }
    return true;
  }

  private leaseLost(sessionId: string, lease: Lease): void {
    if (this.held.get(sessionId) !== lease) return;
    this.held.delete(sessionId);
    this.deps.logger.log('warn', 'lease lost: this daemon stops running the session', { sessionId, epoch: lease.epoch, reason: String(lease.lost.reason) });
    const runner = this.runners.get(sessionId);
    this.runners.delete(sessionId);
    // Not awaited: this may run inside the runner's own loop (a fenced write).
    void runner?.stop().then(() => {
      this.deps.logger.log('info', 'stopped running the session after losing its lease', { sessionId });
      return this.closeProxy(sessionId);
    });
  }

  /**
   * The runner went idle. With leases: give the lease up so any daemon can run the next
   * turn, then look again: a prompt that another daemon appended while we held the lease
   * could not take it, so it is ours to run.
   */
  private async ran(sessionId: string, runner: SessionRunner): Promise<void> {
    const { leases } = this.deps;
    if (leases && !runner.busy && !this.stopping && this.runners.get(sessionId) === runner) {
      const lease = this.held.get(sessionId);
      if (lease) {
        this.held.delete(sessionId);
        await leases.release(lease).catch((error: unknown) => this.deps.logger.log('warn', 'releasing a lease failed; it will expire', { sessionId, error: String(error) }));
        if (await runner.hasPendingTurn().catch(() => false)) return this.start(sessionId, false);
      }
    }
    this.evictWhenIdle(sessionId, runner);
  }

  /** Sessions mid-turn whose lease holder died (or that nobody took up): carry them on here. */
  private adoptOrphans(): Promise<void> {
    this.scanning ??= (async () => {
      try {
        for (const sessionId of await this.deps.leases!.orphans(100)) {
          if (this.stopping) return;
          if (this.held.has(sessionId)) continue;
          this.deps.logger.log('info', 'taking over session', { sessionId });
          await this.wake(sessionId);
        }
        this.lastScan = { at: Date.now() };
      } catch (error) {
        this.lastScan = { at: Date.now(), error: String(error) };
        this.deps.logger.log('warn', 'looking for sessions to take over failed', { error: String(error) });
      }
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  /**
   * For /readyz: without leases there is no loop; with them, it runs when its last scan
   * for orphaned sessions succeeded within a few intervals (or the first is under way).
   */
  leaseLoop(): 'none' | 'running' | 'stalled' | 'failing' {
    if (!this.deps.leases) return 'none';
    if (this.stopping) return 'stalled';
    if (!this.lastScan) return this.scanning ? 'running' : 'stalled';
    if (this.lastScan.error) return 'failing';
    return Date.now() - this.lastScan.at <= Math.max(3 * this.scanEveryMs, 5000) ? 'running' : 'stalled';
  }

  /** Keeps memory to the sessions at work: an idle runner (its fold, its sandbox) goes after a while. */
  private evictWhenIdle(sessionId: string, runner: SessionRunner): void {
    clearTimeout(this.idleTimers.get(sessionId));
    const timer = setTimeout(() => {
      this.idleTimers.delete(sessionId);
      if (runner.busy || this.runners.get(sessionId) !== runner) return;
      this.runners.delete(sessionId);
      // A ledger is only a cache of its root's log: one made again reads it again.
      this.ledgers.delete(sessionId);
      void runner.stop().then(() => this.closeProxy(sessionId));
    }, IDLE_EVICT_MS);
    timer.unref();
    this.idleTimers.set(sessionId, timer);
  }

  /**
   * `sandbox.eager`: provision at session start, but never ahead of the first token. A
   * prompt sent right after the create (as `agentd run` does) reaches the runner within
   * EAGER_GRACE_MS; the bind then waits for its turn's first output.
   */
  async provisionEagerly(sessionId: string): Promise<void> {
    if (this.deps.leases && !(await this.hold(sessionId))) return;
    const runner = await this.runner(sessionId);
    try {
      await delay(EAGER_GRACE_MS);
      await runner.firstOutput.clear();
      await runner.slot.get();
    } finally {
      await this.ran(sessionId, runner);
    }
  }

  /**
   * Resolves once the session's runner's writes so far have landed: its metadata then
   * says which turn runs (session/steer reads it), though a turn's first write is not
   * waited for before its model call.
   */
  async writesLanded(sessionId: string): Promise<void> {
    await this.runners.get(sessionId)?.writesLanded();
  }

  /** The turn and tool call the session runs now, if any. */
  running(sessionId: string): { turnId: string; toolUseId?: string } | undefined {
    return this.runners.get(sessionId)?.running;
  }

  /**
   * Stops the session's running turn here; false when none runs here. With `turnId`, only
   * that turn, stopped as it starts when its runner is not here yet (it may never be: the
   * turn may run elsewhere, so only a few such are remembered).
   */
  interrupt(sessionId: string, turnId?: string): boolean {
    const runner = this.runners.get(sessionId);
    if (runner || turnId === undefined) return runner?.interrupt(turnId) ?? false;
    this.interruptsAhead.set(sessionId, turnId);
    if (this.interruptsAhead.size > INTERRUPTS_AHEAD_MAX) this.interruptsAhead.delete(this.interruptsAhead.keys().next().value!);
    return false;
  }

  /**
   * The session is being archived: its runner stops (a turn interrupted first is recorded as
   * such) and its sandbox, with everything still running in it, goes now, not at idle eviction.
   */
  async release(sessionId: string): Promise<void> {
    clearTimeout(this.idleTimers.get(sessionId));
    this.idleTimers.delete(sessionId);
    const runner = this.runners.get(sessionId);
    this.runners.delete(sessionId);
    await runner?.stop();
    this.ledgers.delete(sessionId);
    await this.closeProxy(sessionId);
    const lease = this.held.get(sessionId);
    if (lease && this.deps.leases) {
      this.held.delete(sessionId);
      await this.deps.leases.release(lease).catch(() => undefined);
    }
  }


  /** Runners with a turn under way now. */
  get busyCount(): number {
    return [...this.runners.values()].filter((r) => r.busy).length;
  }

  /**
   * Stops every runner without recording an end: the next daemon wakes them. With
   * `drainMs`, runners first get that long to reach a durable point (see
   * SessionRunner.drain); whatever is still running then is cut off as in a crash.
   */
  async stop(drainMs = 0): Promise<void> {
    this.stopping = true;
    clearInterval(this.scanTimer);
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    if (drainMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      const drained = Promise.allSettled([...this.runners.values()].map((r) => r.drain()));
      await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))]);
      clearTimeout(timer);
    }
    await Promise.allSettled([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    await this.deps.provider.close?.().catch(() => undefined);
    await this.scanning;
    // Handed over at once: another daemon need not wait for these to expire.
    const { leases } = this.deps;
    if (leases) {
      await Promise.allSettled([...this.held.values()].map((lease) => leases.release(lease, { handOver: true })));
      this.held.clear();
      await leases.close();
    }
    await Promise.allSettled([...this.proxies.keys()].map((id) => this.closeProxy(id)));
  }

  private async closeProxy(sessionId: string): Promise<void> {
    const endpoint = this.proxies.get(sessionId);
    this.proxies.delete(sessionId);
    await endpoint?.then((opened) => opened.close(), () => undefined);
  }
}
