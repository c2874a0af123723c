/**
 * Preloaded into every node process in the sandbox (NODE_OPTIONS=--require): node 20's
 * fetch ignores HTTP(S)_PROXY, so without this `fetch()` would find no way out. undici's
 * EnvHttpProxyAgent reads the same variables curl, git, npm and pip read (NO_PROXY too);
 * node's own fetch uses whatever dispatcher sits at this global symbol. undici is loaded
 * on the first fetch only (undici-agent.cjs), so a node process that never fetches pays
 * nothing for it.
 */
import type { Dispatcher } from 'undici';

const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

if (process.env.HTTPS_PROXY || process.env.HTTP_PROXY) {
  let agent: Dispatcher | undefined;
  // The bundle next to this one (this file runs bundled as CommonJS, so __dirname is the bundle's dir).
  const load = (): Dispatcher => (agent ??= new (require(`${__dirname}/undici-agent.cjs`) as typeof import('undici')).EnvHttpProxyAgent());
  const lazy = new Proxy({} as Dispatcher, {
    get: (_target, key) => {
      const real = load();
      const value: unknown = Reflect.get(real, key, real);
      return typeof value === 'function' ? value.bind(real) : value;
    },
  });
  Object.defineProperty(globalThis, GLOBAL_DISPATCHER, { value: lazy, writable: true, enumerable: false, configurable: false });
}
