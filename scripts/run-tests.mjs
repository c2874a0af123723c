// Runs every compiled *.test.js under dist/test with node's test runner. Node 20 runs
// every .js file of a directory given to --test (support modules too), so the test
// files are listed here explicitly. Extra arguments narrow the run: a substring of a path.
//
// The run gets a temp dir of its own (TMPDIR for every test process) and a marker in
// the environment. Afterwards it fails when anything the tests made is left: a process
// that carries the marker or lives in the run's temp dir (a daemon, a sandbox, a
// PostgreSQL server), or a file in the temp dir. Whatever is left is then removed.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

const runDir = mkdtempSync(join(tmpdir(), 'agentd-test-run-'));
// Traversable (not listable) by other users, as /tmp is: the PostgreSQL server runs as `postgres`.
chmodSync(runDir, 0o711);
const marker = `AGENTD_TEST_RUN=${runDir}`;
// os.tmpdir() reads TMPDIR: the PostgreSQL server below and every test process make their dirs here.
process.env.TMPDIR = runDir;

// One PostgreSQL server for the whole run (the postgres backend and multi-daemon tests),
// unless AGENTD_TEST_PG names one already.
const { startPgServer } = await import('../dist/test/support/postgres.js');
let pg;
if (!process.env.AGENTD_TEST_PG) {
  try {
    pg = await startPgServer();
  } catch (error) {
    process.stderr.write(`cannot start the test PostgreSQL server: ${error.message}\n`);
    rmSync(runDir, { recursive: true, force: true });
    process.exit(1);
  }
}
// What the tests keep for people to look at (the web client's screenshots): outside the
// temp dir, which is removed, in .build/test-output/<run>/ (gitignored).
const artifacts = join('.build', 'test-output', runDir.split('-').pop());
mkdirSync(artifacts, { recursive: true });
const env = { ...process.env, AGENTD_TEST_RUN: runDir, AGENTD_TEST_ARTIFACTS: join(process.cwd(), artifacts), ...(pg ? { AGENTD_TEST_PG: pg.url } : {}) };
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit', env });
if (existsSync(artifacts) && readdirSync(artifacts).length > 0) process.stderr.write(`\ntest artifacts (screenshots): ${artifacts}\n`);
else rmSync(artifacts, { recursive: true, force: true });
await pg?.stop();

/** Processes of this run still alive: the marker in their environment, or their cwd or arguments in the run's dir. */
function survivors() {
  const found = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const read = (file) => {
      try {
        return readFileSync(`/proc/${pid}/${file}`, 'latin1');
      } catch {
        return '';
      }
    };
    if (/^\S+ \(.*\) Z /.test(read('stat'))) continue; // a zombie is already dead
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // gone, or not ours to read
    }
    const args = read('cmdline').split('\0');
    const environ = read('environ').split('\0');
    if (environ.includes(marker) || cwd === runDir || cwd.startsWith(`${runDir}/`) || args.some((a) => a.includes(runDir))) {
      // Its data dir tells which test started it.
      const home = environ.find((e) => e.startsWith('AGENTD_HOME='));
      found.push({ pid, command: `${args.join(' ').trim().slice(0, 200)}${home ? ` (${home})` : ''}` });
    }
  }
  return found;
}

let leaked = false;
const alive = survivors();
if (alive.length > 0) {
  leaked = true;
  process.stderr.write(`\nleak check: ${alive.length} process(es) started by the tests are still running (now killed):\n`);
  for (const p of alive) {
    process.stderr.write(`  pid ${p.pid}: ${p.command}\n`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}
const left = readdirSync(runDir);
if (left.length > 0) {
  leaked = true;
  process.stderr.write(`\nleak check: the tests left ${left.length} item(s) in their temp dir (now removed):\n${left.map((n) => `  ${n}\n`).join('')}`);
}
rmSync(runDir, { recursive: true, force: true });
process.exit(result.status === 0 && leaked ? 1 : (result.status ?? 1));
