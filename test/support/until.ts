/**
 * Waits for a condition, not for a time: polls `get` until it returns a truthy value
 * (which it returns) or `timeoutMs` passes (then fails naming `what`). The one wait
 * helper of the tests; the timeout only bounds a test that would otherwise hang.
 */
export async function until<T>(get: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
