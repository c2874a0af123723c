import { appendFileSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * The daemon's diagnostics: one line per record in daemon.log. Never stdout (a
 * bridge may be piping protocol frames there) and never secrets.
 */
export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /** Set by the daemon once the vault is known: every line passes through it. */
  redact?: (line: string) => string;
}

export function fileLogger(path: string, minLevel: LogLevel = 'info'): Logger {
  const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  const logger: Logger = {
    log(level, message, fields) {
      if (order[level] < order[minLevel]) return;
      const raw = JSON.stringify({ t: new Date().toISOString(), level, msg: message, ...fields }) + '\n';
      const line = logger.redact ? logger.redact(raw) : raw;
      try {
        // Synchronous so a record written just before a crash or exit is not lost.
        appendFileSync(path, line, { mode: 0o600 });
      } catch {
        process.stderr.write(line);
      }
    },
  };
  return logger;
}
