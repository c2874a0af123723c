// Runs every compiled *.test.js under dist/test with node's test runner. Node 20 runs
// every .js file of a directory given to --test (support modules too), so the test
// files are listed here explicitly. Extra arguments narrow the run: a substring of a path.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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
const env = pg ? { ...process.env, AGENTD_TEST_PG: pg.url } : process.env;
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit', env });
await pg?.stop();
process.exit(result.status ?? 1);
