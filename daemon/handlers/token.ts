import type { TokenCreate, TokenList, TokenRevoke } from '../../protocol/index.js';
import type { Handler } from './context.js';

export const create: Handler<typeof TokenCreate> = async (params, { daemon }) => {
  // A scope names sessions that exist: a typo would make a token that sees nothing.
  for (const sessionId of params.sessions ?? []) await daemon.sessions.record(sessionId);
  const created = await daemon.tokens.create(params);
  // The token itself is in the answer only: never in the log.
  daemon.logger.log('info', 'token created', { id: created.info.id, name: created.info.name, role: created.info.role, scoped: created.info.sessions !== null });
  return created;
};

export const list: Handler<typeof TokenList> = async (_params, { daemon }) => ({ tokens: await daemon.tokens.list() });

export const revoke: Handler<typeof TokenRevoke> = async ({ id }, { daemon }) => {
  await daemon.tokens.revoke(id);
  daemon.logger.log('info', 'token revoked', { id });
  return {};
};
