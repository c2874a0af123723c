// Runs every compiled *.test.js under dist/test with node's test runner. Node 20 runs
// every .js file of a directory given to --test (support modules too), so the test
// files are listed here explicitly. Extra arguments narrow the run: a substring of a path.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'support' ? [] : testFiles(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const filters = process.argv.slice(2);
const files = testFiles('dist/test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (files.length === 0) {
  process.stderr.write('no test files matched\n');
  process.exit(1);
}

// One PostgreSQL server for the whole run (the postgres backend and multi-daemon tests),
// unless AGENTD_TEST_PG names one already.
const { startPgServer } = await import('../dist/test/support/postgres.js');
let pg;
if (!process.env.AGENTD_TEST_PG) {
  try {
    pg = await startPgServer();
  } catch (error) {
    process.stderr.write(`cannot start the test PostgreSQL server: ${error.message}\n`);
    process.exit(1);
  }
}
// Every process the run starts inherits this mark, detached daemons included: whatever
// still carries it when the run is over was leaked by a test.
const mark = `agentd-test-run-${randomBytes(6).toString('hex')}`;
const env = { ...process.env, ...(pg ? { AGENTD_TEST_PG: pg.url } : {}), AGENTD_TEST_RUN: mark };
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit', env });
await pg?.stop();
const leaked = await leftovers(mark);
if (leaked.length > 0) {
  process.stderr.write(`\nthe tests left ${leaked.length} process(es) running (now killed):\n${leaked.map((p) => `  ${p.pid} ${p.command}`).join('\n')}\n`);
  for (const p of leaked) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  process.exit(1);
}
process.exit(result.status ?? 1);

/** Processes (other than this one) still carrying the run's mark, after a moment to exit on their own. */
async function leftovers(mark) {
  const scan = () =>
    readdirSync('/proc').flatMap((name) => {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid) return [];
      try {
        if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`AGENTD_TEST_RUN=${mark}`)) return [];
        const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
        const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        return state === 'Z' ? [] : [{ pid, command }];
      } catch {
        return []; // gone, or not ours to read
      }
    });
  for (let i = 0; i < 50 && scan().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return scan();
}
