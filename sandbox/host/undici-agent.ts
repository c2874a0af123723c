/** undici's proxy agent, bundled on its own so fetch-proxy.ts loads it only on a node process's first fetch. */
export { EnvHttpProxyAgent } from 'undici';
