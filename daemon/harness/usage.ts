/**
 * Usage arithmetic and the price table: what a model call cost, what a session has used,
 * and what a call holds of a budget while it runs.
 */
import { z } from 'zod';
import type { Usage, UsageTotals } from '../../protocol/index.js';
import type { Spend } from './budget-ledger.js';

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

/** What a call that used `usage` spent, as a tree's budget counts it. */
export function spendOf(prices: PriceTable, model: string, usage: Usage): Spend {
  return { tokens: totalTokens(usage), costUsd: costOf(prices, model, usage) ?? 0 };
}

/**
 * The most a call is expected to use: its request's estimated tokens, all priced as the
 * dearest kind of input (a cache write, say), and `maxOutput` tokens of reply.
 */
export function reservationFor(prices: PriceTable, model: string, inputTokens: number, maxOutput: number): Spend {
  const price = prices[model];
  const inputPrice = price ? Math.max(price.input, price.cacheRead ?? price.input, price.cacheWrite ?? price.input) : 0;
  return { tokens: inputTokens + maxOutput, costUsd: price ? (inputTokens * inputPrice + maxOutput * price.output) / 1_000_000 : 0 };
}
