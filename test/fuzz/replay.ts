/** Replays corpus cases against a daemon and reports what came back, in the corpus's own terms. */
import { RawConnection } from '../support/daemon.js';
import { INITIALIZE, type CorpusCase, type Expect } from './corpus.js';

type Message = Record<string, unknown>;

/** What the daemon did with one case; compared with `Expect` by deepEqual. */
export type Outcome = Expect | { unexpected: string };

export interface Connections {
  /** Opens a connection (straight to the socket, or through `agentd stdio`). */
  open(): Promise<RawConnection>;
  /** Shared by the cases that do not end their connection: one never initialized, one initialized. */
  fresh: RawConnection;
  ready: RawConnection;
}

const errorOf = (m: Message) => m.error as { code: number } | undefined;

export async function openConnections(open: () => Promise<RawConnection>): Promise<Connections> {
  const [fresh, ready] = await Promise.all([open(), open()]);
  await initialize(ready);
  return { open, fresh, ready };
}

export async function initialize(conn: RawConnection): Promise<void> {
  conn.send(INITIALIZE);
  const reply = await conn.next((m) => m.id === INITIALIZE.id);
  if (reply.error) throw new Error(`initialize failed: ${JSON.stringify(reply.error)}`);
}

/** Sends one case and reports the outcome. `n` makes the liveness probe's id unique. */
export async function replay(c: CorpusCase, conns: Connections, n: number): Promise<Outcome> {
  if (c.expect === 'closes' || (typeof c.expect === 'object' && 'closes' in c.expect)) return replayClosing(c, conns);
  const conn = c.phase === 'fresh' ? conns.fresh : conns.ready;
  const start = conn.messages.length;
  const fresh = (m: Message) => conn.messages.indexOf(m) >= start;
  conn.sendRaw(c.bytes(), c.oneByteAtATime);
  if (c.expect !== 'silence') await conn.next(fresh, 10_000).catch(() => undefined);
  // A probe after the case: its answer proves the connection still works, and anything
  // else that arrived before it is the case's reply.
  const probe = `probe-${n}`;
  conn.send({ id: probe, method: 'daemon/status' });
  await conn.next((m) => m.id === probe);
  const replies = conn.messages.slice(start).filter((m) => m.id !== probe);
  if (replies.length === 0) return 'silence';
  if (replies.length > 1) return { unexpected: JSON.stringify(replies).slice(0, 500) };
  const [reply] = replies as [Message];
  const id = reply.id as string | number | null;
  if (errorOf(reply)) return { code: errorOf(reply)!.code, id };
  if ('result' in reply && id !== null) return { result: true, id };
  return { unexpected: JSON.stringify(reply).slice(0, 500) };
}

async function replayClosing(c: CorpusCase, conns: Connections): Promise<Outcome> {
  const conn = await conns.open();
  try {
    if (c.phase === 'ready') await initialize(conn);
    const start = conn.messages.length;
    conn.sendRaw(c.bytes(), c.oneByteAtATime);
    const reply = await conn.next((m) => conn.messages.indexOf(m) >= start, 10_000).catch(() => undefined);
    const closed = await conn.waitClosed(10_000).then(() => true, () => false);
    if (c.expect === 'closes') return closed && !reply ? 'closes' : { unexpected: JSON.stringify({ reply, closed }) };
    if (!reply || !errorOf(reply)) return { unexpected: `no error reply; closed: ${closed}` };
    return closed && reply.id === null ? { code: errorOf(reply)!.code, closes: true } : { unexpected: JSON.stringify({ reply, closed }) };
  } finally {
    conn.close();
  }
}
