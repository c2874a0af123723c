import { after, before } from 'node:test';

/**
 * One fixture (a daemon, a rig) for the enclosing describe block: started before its
 * tests, disposed after them. Tests read it through the returned function.
 */
export function suiteFixture<T extends { dispose(): Promise<void> }>(start: () => Promise<T>): () => T {
  let fixture: T | undefined;
  before(async () => {
    fixture = await start();
  });
  after(() => fixture?.dispose());
  return () => {
    if (!fixture) throw new Error('the suite fixture was read before its before hook ran');
    return fixture;
  };
}

/** Runs `body` with a fixture of its own, disposed whatever happens. */
export async function withFixture<T extends { dispose(): Promise<void> }, R>(started: Promise<T>, body: (fixture: T) => Promise<R>): Promise<R> {
  const fixture = await started;
  try {
    return await body(fixture);
  } finally {
    await fixture.dispose();
  }
}
