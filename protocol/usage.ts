import { z } from 'zod';
import { Usage } from './content.js';

/**
 * Tokens and what they cost. `costUsd` is priced by the daemon's price table
 * (`prices` in $AGENTD_HOME/config.json); it is absent when the model has no price there.
 */
export const UsageTotals = Usage.extend({ costUsd: z.number().nonnegative().optional() });
export type UsageTotals = z.infer<typeof UsageTotals>;

/**
 * A session's spending limit, shared with its sub-agents. Tokens count everything a model
 * call is billed for (input, output, cache reads and writes) over all the model calls of
 * the session and its sub-agents. A turn that would start a model call past either limit
 * ends with `turn.failed {reason: "budget_exceeded"}`; session/setBudget changes it.
 */
export const Budget = z.object({
  maxTokens: z.number().int().positive().optional(),
  /** In US dollars, by the daemon's price table; refused for a model without a price. */
  maxCost: z.number().positive().optional(),
});
export type Budget = z.infer<typeof Budget>;

/** Why a turn failed, when it is one a client may act on (the `error` text says it in words). */
export const TurnFailureReason = z.enum(['budget_exceeded']);
export type TurnFailureReason = z.infer<typeof TurnFailureReason>;
