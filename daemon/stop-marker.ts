import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseStopMarker, type StopMarker } from '../protocol/index.js';

/** The marker `agentd stop` left (protocol/methods/daemon.ts), if any. */
function readStopMarker(path: string): StopMarker | undefined {
  try {
    return parseStopMarker(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Written before the daemon tells its clients it stops, so that none of them starts it again. */
export function writeStopMarker(path: string, reason: string): void {
  const marker: StopMarker = { at: Date.now(), reason };
  writeFileSync(path, `${JSON.stringify(marker)}\n`, { mode: 0o600 });
}

export function clearStopMarker(path: string): void {
  rmSync(path, { force: true });
}

/**
 * The stop this start came too late for: a client asked for a daemon (at
 * `AGENTD_AUTOSTART_AT`) and someone ran `agentd stop` after that. Such a start is
 * stale: the daemon it raced with served the client and was stopped on purpose since.
 */
export function staleStart(path: string, env: NodeJS.ProcessEnv): StopMarker | undefined {
  const requestedAt = Number(env.AGENTD_AUTOSTART_AT);
  if (!Number.isFinite(requestedAt)) return undefined;
  const marker = readStopMarker(path);
  return marker && marker.at >= requestedAt ? marker : undefined;
}
