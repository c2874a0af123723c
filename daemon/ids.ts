import { randomBytes } from 'node:crypto';

const TIME_WIDTH = 10;

function randomBase36(length: number): string {
  let out = '';
  for (const byte of randomBytes(length)) out += (byte % 36).toString(36);
  return out;
}

/** Session ids sort by creation time, so listing newest first is a reverse key scan. */
export function newSessionId(now: number = Date.now()): string {
  return `s_${now.toString(36).padStart(TIME_WIDTH, '0')}${randomBase36(10)}`;
}

export function newTurnId(): string {
  return `t_${randomBase36(16)}`;
}

export function newSubscriptionId(): string {
  return `sub_${randomBase36(12)}`;
}
