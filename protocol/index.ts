/**
 * The wire contract of agentd. Imports only zod: clients in any
 * language can rely on it through the generated JSON Schema (protocol/schema/).
 */
export * from './version.js';
export * from './errors.js';
export * from './limits.js';
export * from './define.js';
export * from './content.js';
export * from './usage.js';
export * from './network.js';
export * from './events.js';
export * from './methods/lifecycle.js';
export * from './methods/session.js';
export * from './methods/events.js';
export * from './methods/vault.js';
export * from './methods/daemon.js';
export * from './methods/permission.js';
export * from './methods/token.js';
export * from './framing.js';
export * from './registry.js';
export * from './layout.cjs';
