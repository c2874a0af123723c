import { LevelSessionLog, PgSessionLog } from '../../daemon/log/index.js';
import type { SessionLog, StoredEvent } from '../../daemon/log/index.js';

/** Every event of a session, read page by page through the interface. */
export async function readAll(log: SessionLog, sessionId: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (let from: number | undefined = 0; from !== undefined; ) {
    const page: { events: StoredEvent[]; next?: number } = await log.read(sessionId, { from });
    all.push(...page.events);
    from = page.next;
  }
  return all;
}

/** A log by location: a postgres:// URL (its `schema` parameter honoured), else a LevelDB directory. */
export function openLogAt(location: string): Promise<SessionLog> {
  return /^postgres(ql)?:\/\//.test(location) ? PgSessionLog.open(location) : LevelSessionLog.open(location);
}
