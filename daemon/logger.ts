import { appendFileSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * The daemon's diagnostics: one line per record in daemon.log. Never stdout (a
 * bridge may be piping protocol frames there) and never secrets.
 */
export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

export function fileLogger(path: string, minLevel: LogLevel = 'info'): Logger {
  const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  return {
    log(level, message, fields) {
      if (order[level] < order[minLevel]) return;
      const line = JSON.stringify({ t: new Date().toISOString(), level, msg: message, ...fields }) + '\n';
      try {
        // Synchronous so a record written just before a crash or exit is not lost.
        appendFileSync(path, line, { mode: 0o600 });
      } catch {
        process.stderr.write(line);
      }
    },
  };
}
