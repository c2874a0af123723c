/**
 * The host's code compiled with V8's code cache: made once at build time (scripts/post-build.mjs,
 * after running the module's top level, so the functions that start-up runs are in it) and used
 * by every sandbox's host, which then neither parses nor compiles them. A cache V8 rejects
 * (another node version or flags) costs nothing but the saving: the code compiles as usual.
 * The host module uses `require` only (its lazy imports too, see post-build): code compiled
 * through node:vm cannot `import()` on node 20 without an experimental flag.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Script } from 'node:vm';

export interface HostModule {
  run(): void;
}

/** `file` (a CommonJS module) compiled as node's CommonJS loader would wrap it, with `cachedData` when given. */
export function compileHost(file: string, cachedData?: Buffer): Script {
  const source = readFileSync(file, 'utf8');
  return new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, ...(cachedData ? { cachedData } : {}) });
}

/** Runs the compiled module's top level; its exports. */
export function loadHost(script: Script, file: string, require: NodeJS.Require): HostModule {
  const module = { exports: {} as HostModule };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, require, module, file, path.dirname(file));
  return module.exports;
}
