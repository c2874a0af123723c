/** The session log: its interface and its backends. */
export * from './session-log.js';
export { LevelSessionLog } from './level-log.js';
export type { LevelLogOptions } from './level-log.js';
export type { BatchPut, BatchWriter, CommitStats } from './group-commit.js';
export { MemorySessionLog } from './memory-log.js';
export { PgSessionLog, parsePgUrl, redactPgUrl } from './pg-log.js';
export type { PgLogOptions } from './pg-log.js';
