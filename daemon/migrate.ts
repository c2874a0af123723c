/**
 * `agentd migrate --to postgres://...`: copies every session of this data dir's LevelDB
 * log into a PostgreSQL database, events with their seqs and timestamps, so daemons
 * sharing that database carry on with them, and its access tokens (their hashes: every
 * daemon on the database then accepts them). Run with the daemon stopped (the data dir's
 * lock says so otherwise); a session or token already in the database is left as it is there.
 */
import { isLevelLocked, LevelSessionLog, LogError, PgSessionLog, redactPgUrl } from './log/index.js';
import type { StoredEvent } from './log/index.js';
import { dataPaths } from './paths.js';

const USAGE = 'usage: agentd migrate --to postgres://user@host/db[?schema=name]   (with the daemon stopped)';

function target(argv: string[]): string | undefined {
  const at = argv.indexOf('--to');
  const inline = argv.find((a) => a.startsWith('--to='));
  return inline ? inline.slice('--to='.length) : at >= 0 ? argv[at + 1] : undefined;
}

export async function run(argv: string[]): Promise<number> {
  const url = target(argv);
  if (argv.includes('--help') || !url || !/^postgres(ql)?:\/\//.test(url)) {
    process.stderr.write(`${USAGE}\n`);
    return argv.includes('--help') ? 0 : 2;
  }
  const paths = dataPaths();
  let source: LevelSessionLog;
  try {
    source = await LevelSessionLog.open(paths.db);
  } catch (error) {
    process.stderr.write(`agentd migrate: ${isLevelLocked(error) ? `the daemon for ${paths.home} is running; stop it first (agentd stop)` : (error as Error).message}\n`);
    return 1;
  }
  let dest: PgSessionLog | undefined;
  try {
    dest = await PgSessionLog.open(url);
    let copied = 0;
    let skipped = 0;
    let events = 0;
    for (let cursor: string | undefined; ; ) {
      const page = await source.list({ limit: 200, ...(cursor ? { cursor } : {}) });
      for (const meta of page.sessions) {
        const all: StoredEvent[] = [];
        for (let from: number | undefined = 0; from !== undefined; ) {
          const read = await source.read(meta.sessionId, { from });
          all.push(...read.events);
          from = read.next;
        }
        if (await dest.importSession(meta, all)) {
          copied++;
          events += all.length;
        } else {
          skipped++;
        }
      }
      if (!page.cursor) break;
      cursor = page.cursor;
    }
    let tokens = 0;
    for (const token of await source.tokens.list()) {
      tokens += await dest.tokens.put(token).then(
        () => 1,
        (error: unknown) => (error instanceof LogError && error.kind === 'exists' ? 0 : Promise.reject(error)),
      );
    }
    process.stdout.write(
      `copied ${copied} session(s), ${events} event(s) to ${redactPgUrl(url)}` +
        `${tokens ? `, and ${tokens} access token(s)` : ''}` +
        `${skipped ? `; ${skipped} already there, left as they are` : ''}\n` +
        `start daemons with AGENTD_LOG set to that URL to use them\n`,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`agentd migrate: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await dest?.close();
    await source.close();
  }
}
