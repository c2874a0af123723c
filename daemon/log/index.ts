/** The session log: its interface and its backends. */
export * from './session-log.js';
export { isLevelLocked, LevelSessionLog } from './level-log.js';
export type { LevelLogOptions } from './level-log.js';
export type { BatchPut, BatchWriter, CommitStats } from './group-commit.js';
export { MemorySessionLog } from './memory-log.js';
export { PgSessionLog } from './pg-log.js';
export { parsePgUrl, redactPgUrl } from './pg-schema.js';
export type { PgLogOptions } from './pg-log.js';
export { PgLeases } from './pg-leases.js';
export type { Lease, SessionLeases } from './leases.js';
export { fencedLog, isFenced } from './fenced.js';
export { delegateLog } from './delegate.js';
