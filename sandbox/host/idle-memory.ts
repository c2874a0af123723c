/** No call for this long: the host gives back what its calls grew (see releaseMemory). */
export const QUIET_MS = 10_000;

/**
 * A session's host is idle most of its life, and V8 keeps the young generation and code its
 * start-up and calls grew. A low-memory collection (what HeapProfiler.collectGarbage asks
 * of V8) shrinks the young generation, compacts the old one and drops compiled code not in
 * use. After a burst of calls that is most of the host's memory (RssAnon 28 -> 8.7 MB
 * after a hundred read_file calls), which V8's own memory reducer leaves in place; a plain
 * full collection (gc()) frees almost none of it either. It costs a few ms of CPU.
 * The code goes too, so the first call after a quiet spell compiles again: QUIET_MS is
 * long enough (as long as the daemon's own quiet spell) that the model's thinking between
 * the calls of a turn does not end one.
 */
export function releaseMemory(): void {
  if (!process.features.inspector) return;
  void import('node:inspector').then(({ Session }) => {
    const session = new Session();
    session.connect();
    // Disconnecting inside the callback would deadlock the session: after it returns.
    session.post('HeapProfiler.collectGarbage', () => setImmediate(() => session.disconnect()));
  });
}
