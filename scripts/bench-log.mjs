// `npm run bench:log -- <args>`: npm appends the args to the script's last command only,
// so this runs both log benches (session log, then daemon) with them, stopping at a failure.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
for (const bench of ['log.js', 'daemon.js']) {
  const result = spawnSync(process.execPath, [fileURLToPath(new URL(`../dist/bench/${bench}`, import.meta.url)), ...args], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
