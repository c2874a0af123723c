/**
 * A host is idle most of its life (between tool calls the model thinks; a pooled one waits
 * to be bound), and V8 keeps the young generation and code its start-up and calls grew. A
 * low-memory collection (what HeapProfiler.collectGarbage asks of V8) shrinks the young
 * generation, compacts the old one and drops compiled code not in use: about 2 MB of PSS
 * per sandbox here (bench/sandbox pss_per_sandbox_kb), for a few ms of CPU per quiet spell.
 */
/** No call for this long: the host gives back what its calls grew. */
export const QUIET_MS = 2_000;

export function releaseMemory(): void {
  if (!process.features.inspector) return;
  void import('node:inspector').then(({ Session }) => {
    const session = new Session();
    session.connect();
    // Disconnecting inside the callback would deadlock the session: after it returns.
    session.post('HeapProfiler.collectGarbage', () => setImmediate(() => session.disconnect()));
  });
}
