/**
 * One budget for a session tree (a session and its sub-agents), kept in the root
 * session's log: every model call of the tree reserves what it may use before it starts
 * (budget.reserved) and settles what it used after (budget.settled). A call starts only
 * while what the tree spent plus what the calls in flight hold stays under the budget;
 * otherwise it waits for those to settle, or, when what was spent alone reaches the
 * budget, fails. Reservations are appended only if the root's log is where the ledger
 * read it (ifHead), so two calls, on any daemon sharing the log, never both take the
 * last of the budget. A kill -9 loses nothing: the ledger is folded from the log.
 */
import { knownEvent, type Budget } from '../../protocol/index.js';
import { appendEvents } from '../events.js';
import { LogError, type SessionLog } from '../log/session-log.js';

/** Tokens (all kinds) and dollars, as the ledger counts them. */
export interface Spend {
  tokens: number;
  costUsd: number;
}

interface Reservation extends Spend {
  sessionId: string;
}

/** No model call may start: what the tree spent reached its budget. */
export class BudgetExceeded extends Error {}

/** The per-call view a runner uses: its session's reservations in its tree's ledger. */
export interface TreeBudget {
  /**
   * Holds `want` for the call `key` of this session; waits while calls in flight hold what
   * is left; throws BudgetExceeded when the spent budget allows no call, and the reason of
   * the first of `signals` that aborts, when one does first. Resolves at once for a tree
   * without a budget.
   */
  reserve(key: string, want: Spend, signals: readonly AbortSignal[]): Promise<void>;
  /** The call `key` ended having used `used` (zero when it gave no reply). */
  settle(key: string, used: Spend): Promise<void>;
  /** Settles, at what they hold, the reservations `sessionId` left open (a crash cut its calls off). */
  release(sessionId: string): Promise<void>;
}

const LEDGER_EVENTS = ['session.created', 'budget.changed', 'budget.reserved', 'budget.settled'] as const;
const ZERO: Spend = { tokens: 0, costUsd: 0 };
const add = (a: Spend, b: Spend): Spend => ({ tokens: a.tokens + b.tokens, costUsd: a.costUsd + b.costUsd });

function limited(budget: Budget | undefined): budget is Budget {
  return budget?.maxTokens !== undefined || budget?.maxCost !== undefined;
}

/** Why `spent` allows no further call under `budget`, in words; undefined while it does. */
export function overBudget(budget: Budget, spent: Spend): string | undefined {
  if (budget.maxTokens !== undefined && spent.tokens >= budget.maxTokens) {
    return `budget exceeded: the session and its sub-agents have used ${spent.tokens} tokens of its ${budget.maxTokens}`;
  }
  if (budget.maxCost !== undefined && spent.costUsd >= budget.maxCost) {
    return `budget exceeded: the session and its sub-agents have spent $${spent.costUsd.toFixed(4)} of its $${budget.maxCost}`;
  }
  return undefined;
}

export class BudgetLedger {
  private budget: Budget | undefined;
  private spent: Spend = ZERO;
  private readonly open = new Map<string, Reservation>();
  /** The root's head as far as the ledger has read. */
  private head = 0;
  private reading: Promise<void> = Promise.resolve();
  /** Calls this ledger reserved for: they settle whatever the budget is by then. */
  private readonly reservedHere = new Set<string>();

  constructor(
    private readonly log: SessionLog,
    readonly rootId: string,
    /**
     * The root's budget as its record says now (kept with every budget.changed): a tree
     * without one never reads its root's log for the ledger, so a wake stays a short read.
     */
    private readonly currentBudget: () => Promise<Budget | undefined>,
  ) {}

  /** The runner's view of this ledger, for one session of the tree. */
  for(sessionId: string): TreeBudget {
    return {
      reserve: (key, want, signals) => this.reserve(sessionId, key, want, signals),
      settle: (key, used) => this.settle(sessionId, key, used),
      release: (id) => this.release(id),
    };
  }

  /** Reads what the root's log gained since the last read (one read at a time). */
  private catchUp(): Promise<void> {
    const read = this.reading.then(async () => {
      for (;;) {
        const page = await this.log.read(this.rootId, { from: this.head, types: LEDGER_EVENTS });
        for (const stored of page.events) this.apply(knownEvent(stored));
        this.head = page.next ?? page.headSeq;
        if (page.next === undefined) return;
      }
    });
    this.reading = read.catch(() => undefined);
    return read;
  }

  private apply(event: ReturnType<typeof knownEvent>): void {
    switch (event?.type) {
      case 'session.created':
        this.budget = event.data.budget;
        break;
      case 'budget.changed':
        // A budget where there was none starts afresh: calls then in flight were never reserved.
        if (!limited(this.budget)) this.open.clear();
        this.budget = event.data.budget;
        break;
      case 'budget.reserved':
        this.open.set(event.data.key, { sessionId: event.data.sessionId, tokens: event.data.tokens, costUsd: event.data.costUsd ?? 0 });
        break;
      case 'budget.settled':
        this.open.delete(event.data.key);
        this.spent = add(this.spent, { tokens: event.data.tokens, costUsd: event.data.costUsd ?? 0 });
        break;
    }
  }

  private held(): Spend {
    return [...this.open.values()].reduce<Spend>(add, ZERO);
  }

  private async reserve(sessionId: string, key: string, want: Spend, signals: readonly AbortSignal[]): Promise<void> {
    if (!limited(await this.currentBudget())) return;
    // Combined only here: AbortSignal.any costs more than a model call's other set-up, and a tree without a budget never waits.
    const signal = signals.length === 1 ? signals[0]! : AbortSignal.any([...signals]);
    for (;;) {
      signal.throwIfAborted();
      await this.catchUp();
      const { budget } = this;
      if (!limited(budget)) return;
      // The same call made again after a crash: it holds what it held.
      if (this.open.has(key)) return void this.reservedHere.add(key);
      const exceeded = overBudget(budget, this.spent);
      if (exceeded) throw new BudgetExceeded(exceeded);
      // What the calls in flight hold is not free: wait for them to settle, then look again.
      if (overBudget(budget, add(this.spent, this.held()))) {
        await this.moved(signal);
        continue;
      }
      const reserved = { key, sessionId, tokens: want.tokens, costUsd: want.costUsd };
      const wrote = await appendEvents(this.log, this.rootId, [{ type: 'budget.reserved', data: reserved }], undefined, { ifHead: this.head }).then(
        () => true,
        (error: unknown) => (error instanceof LogError && error.kind === 'conflict' ? false : Promise.reject(error)),
      );
      if (wrote) return void this.reservedHere.add(key);
      // Another write to the root's log is under way or landed: look again once it is readable.
      await this.moved(signal);
    }
  }

  private async settle(sessionId: string, key: string, used: Spend): Promise<void> {
    // A call made before a budget was set is counted all the same.
    if (!this.reservedHere.delete(key) && !limited(await this.currentBudget())) return;
    await appendEvents(this.log, this.rootId, [{ type: 'budget.settled', data: { key, sessionId, tokens: used.tokens, costUsd: used.costUsd } }]);
  }

  private async release(sessionId: string): Promise<void> {
    if (!limited(await this.currentBudget())) return;
    await this.catchUp();
    const left = [...this.open].filter(([, r]) => r.sessionId === sessionId);
    if (left.length === 0) return;
    await appendEvents(
      this.log,
      this.rootId,
      left.map(([key, r]) => ({ type: 'budget.settled' as const, data: { key, sessionId, tokens: r.tokens, costUsd: r.costUsd } })),
    );
  }

  /** Resolves once the root's log moved past what the ledger read; rejects when `signal` aborts. */
  private async moved(signal: AbortSignal): Promise<void> {
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const moved = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const subscription = await this.log.subscribe(this.rootId, this.head, (events) => {
      if (events.length > 0) settle.resolve();
    });
    void subscription.ended.then((end) => (end.reason === 'error' ? settle.reject(end.error) : settle.resolve()));
    const abort = () => settle.reject(signal.reason);
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    try {
      await moved;
    } finally {
      signal.removeEventListener('abort', abort);
      subscription.close();
    }
  }
}
