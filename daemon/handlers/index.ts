import type { HandlerTable } from './context.js';
import * as admin from './admin.js';
import * as events from './events.js';
import * as lifecycle from './lifecycle.js';
import * as permission from './permission.js';
import * as session from './session.js';
import * as token from './token.js';

export type { Daemon, HandlerTable, RequestContext } from './context.js';

export const handlers = {
  initialize: lifecycle.initialize,
  shutdown: lifecycle.shutdown,
  'session/create': session.create,
  'session/list': session.list,
  'session/get': session.get,
  'session/prompt': session.prompt,
  'session/interrupt': session.interrupt,
  'session/fork': session.fork,
  'session/attach': session.attach,
  'session/archive': session.archive,
  'session/steer': session.steer,
  'session/rename': session.rename,
  'session/setBudget': session.setBudget,
  'session/setNetwork': session.setNetwork,
  'session/rollback': session.rollback,
  'session/delete': session.remove,
  'session/events': events.events,
  'session/subscribe': events.subscribe,
  'session/unsubscribe': events.unsubscribe,
  'vault/set': admin.vaultSet,
  'vault/list': admin.vaultList,
  'vault/delete': admin.vaultDelete,
  'daemon/status': admin.status,
  'daemon/stop': admin.stop,
  'permission/answer': permission.answer,
  'token/create': token.create,
  'token/list': token.list,
  'token/revoke': token.revoke,
} satisfies HandlerTable;
