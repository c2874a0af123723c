/**
 * The idle daemon's malloc trim (koffi's FFI to glibc's malloc_trim): there wherever the C
 * library is glibc, and it really gives freed malloc memory back. A child process fragments its
 * malloc heap the way a burst of work does (freed chunks between chunks still in use, so
 * glibc cannot give them back from the top), frees them, and trims.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { glibcVersion, loadMallocTrim } from '../daemon/malloc-trim.js';

const glibc = glibcVersion() !== undefined;
const MiB = 1024 * 1024;

/** Runs in the child: 2,000 freed 64 KiB ArrayBuffers (malloc'd), each followed by a 4 KiB one kept. */
const FRAGMENT_THEN_TRIM = `
import { readFileSync } from 'node:fs';
const { loadMallocTrim } = await import(process.argv[1]);
const anon = () => Number(/^RssAnon:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
let freed = [];
const kept = [];
for (let i = 0; i < 2000; i++) {
  freed.push(new Uint8Array(64 * 1024).fill(1));
  kept.push(new Uint8Array(4 * 1024).fill(1));
}
const held = process.memoryUsage().arrayBuffers;
freed = undefined;
// V8 frees backing stores after a full collection, some on its own threads: wait until they are gone.
while (process.memoryUsage().arrayBuffers > held - 100 * 1024 * 1024) {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}
const before = anon();
const released = loadMallocTrim()();
const after = anon();
process.stdout.write(JSON.stringify({ before, after, released, kept: kept.length }));
`;

describe('malloc trim', () => {
  it('is built where the C library is glibc, and gives back the freed malloc memory that glibc kept', () => {
    if (!glibc) return assert.equal(loadMallocTrim(), undefined, 'only glibc has malloc_trim');
    assert.equal(typeof loadMallocTrim(), 'function', 'koffi loads glibc\'s malloc_trim');
    const child = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', FRAGMENT_THEN_TRIM, new URL('../daemon/malloc-trim.js', import.meta.url).pathname], { encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    const { before, after, released } = JSON.parse(child.stdout) as { before: number; after: number; released: boolean };
    assert.equal(released, true);
    // 125 MiB were freed; glibc kept them until the trim.
    assert.ok(before - after > 100 * MiB, `trim gave back only ${((before - after) / MiB).toFixed(1)} MiB (anonymous RSS ${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB)`);
  });
});
