/**
 * Preloaded into every node process in the sandbox (NODE_OPTIONS=--require): node 20's
 * fetch ignores HTTP(S)_PROXY, so without this `fetch()` would find no way out. undici's
 * EnvHttpProxyAgent reads the same variables curl, git, npm and pip read (NO_PROXY too),
 * and node's own fetch uses the global dispatcher it installs.
 */
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

if (process.env.HTTPS_PROXY || process.env.HTTP_PROXY) setGlobalDispatcher(new EnvHttpProxyAgent());
