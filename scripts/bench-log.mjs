// `npm run bench:log -- <args>`: npm appends the args to the script's last command only,
// so this runs both log benches (session log, then daemon) with them, stopping at a failure.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
// With PostgreSQL, the lease hand-over after kill -9 joins the figures.
const postgres = args.some((a, i) => a === '--backend=postgres' || (a === '--backend' && args[i + 1] === 'postgres'));
for (const bench of postgres ? ['log.js', 'daemon.js', 'handover.js'] : ['log.js', 'daemon.js']) {
  const benchArgs = bench === 'handover.js' ? [] : args;
  const result = spawnSync(process.execPath, [fileURLToPath(new URL(`../dist/bench/${bench}`, import.meta.url)), ...benchArgs], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
