/** The session log: its interface and its backends. */
export * from './session-log.js';
export { LevelSessionLog } from './level-log.js';
export { MemorySessionLog } from './memory-log.js';
