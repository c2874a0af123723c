/**
 * The tool host's entry (bundled to bundle/main.cjs, CommonJS): loads the host (bundle/host.cjs)
 * with the code cache built next to it (code-cache.ts), and runs it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { compileHost, loadHost } from './code-cache.js';

const file = path.join(__dirname, 'host.cjs');
let cachedData: Buffer | undefined;
try {
  cachedData = readFileSync(`${file}.cache`);
} catch {
  // No cache (a build without one): compiled as usual.
}
loadHost(compileHost(file, cachedData), file, createRequire(file)).run();
