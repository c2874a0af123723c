import type { SessionLog } from './session-log.js';

/** A SessionLog that forwards to `log`, with some methods replaced: for wrappers that time or fence writes. */
export function delegateLog(log: SessionLog, overrides: Partial<Omit<SessionLog, 'supports' | 'tokens'>>): SessionLog {
  return {
    supports: log.supports,
    tokens: log.tokens,
    create: (meta, events) => log.create(meta, events),
    append: (sessionId, events, metaPatch, options) => log.append(sessionId, events, metaPatch, options),
    read: (sessionId, options) => log.read(sessionId, options),
    head: (sessionId) => log.head(sessionId),
    subscribe: (sessionId, from, listener, options) => log.subscribe(sessionId, from, listener, options),
    getMeta: (sessionId) => log.getMeta(sessionId),
    patchMeta: (sessionId, patch, options) => log.patchMeta(sessionId, patch, options),
    list: (options) => log.list(options),
    delete: (sessionId) => log.delete(sessionId),
    count: () => log.count(),
    putCheckpoint: (sessionId, checkpoint) => log.putCheckpoint(sessionId, checkpoint),
    getCheckpoint: (sessionId) => log.getCheckpoint(sessionId),
    close: () => log.close(),
    ...overrides,
  };
}

/** A SessionLog that reports how long each durable append took (for daemon/status, and as a sign of work). */
export function timedLog(log: SessionLog, appended: (ms: number) => void): SessionLog {
  return delegateLog(log, {
    append: async (sessionId, events, metaPatch, options) => {
      const started = performance.now();
      const seqs = await log.append(sessionId, events, metaPatch, options);
      appended(performance.now() - started);
      return seqs;
    },
  });
}
