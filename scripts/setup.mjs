// Installs the system packages the tests need, only those missing, before `npm test` runs
// them. Debian/Ubuntu as root (or with passwordless sudo): apt-get install. Anywhere else
// it stops with one line naming what is missing and the command that installs it.
// `--check` only reports (exit 1 when something is missing); it never installs.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function executableIn(dirs, command) {
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const onPath = (command) => executableIn([...(process.env.PATH ?? '').split(delimiter), ...SBIN], command);

/** The server binaries test/support/postgres.ts looks for (Debian puts them beside their version). */
function postgresServer() {
  const root = '/usr/lib/postgresql';
  return existsSync(root) && readdirSync(root).some((v) => existsSync(join(root, v, 'bin', 'initdb')));
}

/** Whether a sandbox finds `command`: sandboxes see the system's own bin dirs, not a user's PATH (pyenv and the like). */
const onSystemPath = (command) => executableIn(['/usr/local/bin', '/usr/bin', '/bin'], command);

/** Debian package → the check that it is there and why the tests need it. */
const NEEDED = [
  { pkg: 'bubblewrap', present: () => onPath('bwrap'), why: 'bwrap: sandboxes at full isolation' },
  { pkg: 'ripgrep', present: () => onPath('rg'), why: 'rg: the grep tool' },
  { pkg: 'git', present: () => onPath('git'), why: 'git: repos cloned through the credential proxy' },
  // AGENTD_TEST_PG names a server to use instead of a private cluster.
  { pkg: 'postgresql', present: () => Boolean(process.env.AGENTD_TEST_PG) || postgresServer(), why: 'initdb/postgres: the PostgreSQL log tests' },
  { pkg: 'iproute2', present: () => onPath('ip'), why: 'ip: loopback in namespace-level sandboxes' },
  { pkg: 'curl', present: () => onSystemPath('curl'), why: 'curl: HTTP from inside sandboxes (egress and proxy tests)' },
  { pkg: 'python3-pip', present: () => onSystemPath('pip'), why: 'pip: pip install through the egress proxy' },
  { pkg: 'openssl', present: () => onSystemPath('openssl'), why: 'openssl: the tests\' TLS certificates' },
  { pkg: 'strace', present: () => onPath('strace'), why: 'strace: a slow or failing disk under a live daemon (the crash tests hold its fsyncs)' },
  // playwright-core drives it; no browser is ever downloaded.
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium'), why: 'chromium: the web client tests, in a real browser (headless)' },
];

const say = (line) => process.stderr.write(`scripts/setup: ${line}\n`);
const missing = () => NEEDED.filter((n) => !n.present());

/** How we may run apt-get here: directly as root, through passwordless sudo, or not at all. */
function aptRunner() {
  if (!onPath('apt-get')) return undefined;
  if (process.getuid?.() === 0) return [];
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n'];
  return undefined;
}

/** Runs apt-get quietly; its output is shown only when it fails. */
function run(prefix, args) {
  const [command, ...rest] = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
  const result = spawnSync(command, rest, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status === 0) return true;
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? `${result.error.message}\n` : ''}`;
  process.stderr.write(output.trimEnd().split('\n').slice(-20).join('\n') + '\n');
  return false;
}

const lacking = missing();
if (lacking.length === 0) {
  say(`ok: ${NEEDED.map((n) => n.pkg).join(', ')} present`);
  process.exit(0);
}
const names = lacking.map((n) => n.pkg).join(' ');
const runner = process.argv.includes('--check') ? undefined : aptRunner();
if (!runner) {
  const how = onPath('apt-get') ? `sudo apt-get install -y ${names}` : `your package manager (on Debian/Ubuntu: apt-get install -y ${names})`;
  say(`missing ${lacking.map((n) => n.why.split(':')[0]).join(', ')} (packages: ${names}); install with ${how}`);
  process.exit(1);
}
say(`installing ${names} with apt-get (${lacking.map((n) => n.why).join('; ')})`);
if (!run(runner, ['update', '-qq']) || !run(runner, ['install', '-y', '-qq', '--no-install-recommends', ...lacking.map((n) => n.pkg)])) {
  say(`apt-get could not install ${names}; try: apt-get update && apt-get install -y ${names}`);
  process.exit(1);
}
const still = missing();
if (still.length > 0) {
  say(`still missing after apt-get: ${still.map((n) => n.why.split(':')[0]).join(', ')} (packages: ${still.map((n) => n.pkg).join(' ')})`);
  process.exit(1);
}
say(`installed ${names}`);
