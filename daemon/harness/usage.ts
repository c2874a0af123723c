/**
 * Usage arithmetic and the price table: what a model call cost, what a session has used,
 * and whether its budget lets another model call start.
 */
import { z } from 'zod';
import type { Budget, Usage, UsageTotals } from '../../protocol/index.js';

/** US dollars per million tokens of each kind, for one model. */
export const ModelPrice = z
  .object({
    input: z.number().nonnegative(),
    output: z.number().nonnegative(),
    /** Default: the input price. */
    cacheRead: z.number().nonnegative().optional(),
    /** Default: the input price. */
    cacheWrite: z.number().nonnegative().optional(),
  })
  .strict();
export type ModelPrice = z.infer<typeof ModelPrice>;

/** Prices by model name (`prices` in $AGENTD_HOME/config.json). */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };

/** What `usage` cost on `model`, or undefined when the table has no price for it. */
export function costOf(prices: PriceTable, model: string, usage: Usage): number | undefined {
  const price = prices[model];
  if (!price) return undefined;
  const perToken = (perMillion: number) => perMillion / 1_000_000;
  return (
    usage.inputTokens * perToken(price.input) +
    usage.outputTokens * perToken(price.output) +
    usage.cacheReadTokens * perToken(price.cacheRead ?? price.input) +
    usage.cacheWriteTokens * perToken(price.cacheWrite ?? price.input)
  );
}

/** Token counts added up (no cost). */
export function sumUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  };
}

/** `total` plus one model call's `usage`, priced on `model` (a cost stays absent when it was or is unknown). */
export function addUsage(total: UsageTotals, usage: Usage, model: string, prices: PriceTable): UsageTotals {
  const sum: UsageTotals = sumUsage(total, usage);
  const cost = costOf(prices, model, usage);
  const before = total.costUsd ?? (isZero(total) ? 0 : undefined);
  return cost !== undefined && before !== undefined ? { ...sum, costUsd: before + cost } : sum;
}

function isZero(u: Usage): boolean {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens === 0;
}

/** Every token a call is billed for. */
export function totalTokens(u: Usage): number {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;
}

/** Why no further model call may start under `budget`, in words; undefined while it may. */
export function budgetExceeded(budget: Budget | undefined, used: UsageTotals): string | undefined {
  if (budget?.maxTokens !== undefined && totalTokens(used) >= budget.maxTokens) {
    return `budget exceeded: the session has used ${totalTokens(used)} tokens of its ${budget.maxTokens}`;
  }
  if (budget?.maxCost !== undefined && (used.costUsd ?? 0) >= budget.maxCost) {
    return `budget exceeded: the session has spent $${(used.costUsd ?? 0).toFixed(4)} of its $${budget.maxCost}`;
  }
  return undefined;
}

/**
 * What is left of `budget` after `used`: a sub-agent's own budget, so that what it spends
 * (counted in its parent's afterwards) cannot go past its parent's. Undefined without a budget.
 */
export function remainingBudget(budget: Budget | undefined, used: UsageTotals): Budget | undefined {
  if (!budget) return undefined;
  const left: Budget = {};
  if (budget.maxTokens !== undefined) left.maxTokens = Math.max(1, budget.maxTokens - totalTokens(used));
  if (budget.maxCost !== undefined) left.maxCost = Math.max(Number.MIN_VALUE, budget.maxCost - (used.costUsd ?? 0));
  return left;
}
