/**
 * A real PostgreSQL server for tests and benchmarks. `AGENTD_TEST_PG` (a postgres:// URL
 * of a server where we may create databases) is used when set; otherwise a throwaway
 * cluster is made with the installed initdb and started on a free loopback port, owned by
 * the `postgres` user when we run as root (PostgreSQL refuses to run as root).
 * scripts/run-tests.mjs starts one cluster for the whole run and exports its URL.
 * Run directly (`node dist/test/support/postgres.js`) it prints the URL and serves until killed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { until } from './until.js';

export interface PgServer {
  /** URL of the server's `postgres` database, as superuser. */
  url: string;
  stop(): Promise<void>;
}

interface PrivateServer extends PgServer {
  /** Synchronous: stops the server and removes its files (for process exit). */
  stopNow(): void;
}

function binDir(): string {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {
    // pg_config comes with libpq-dev only; look where Debian puts the server.
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) if (existsSync(join(root, version, 'bin', 'initdb'))) return join(root, version, 'bin');
  throw new Error('PostgreSQL is not installed: `apt-get install -y postgresql` (what .ci/run does), or set AGENTD_TEST_PG to a server URL');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** uid/gid of the `postgres` user when we are root; PostgreSQL will not run as root. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error('running as root needs a `postgres` user to own the test cluster (the postgresql package creates it)');
  }
}

async function waitReady(url: string, proc: ChildProcess, log: () => string): Promise<void> {
  let refused = '';
  const accepts = async () => {
    if (proc.exitCode !== null) throw new Error(`postgres exited (${proc.exitCode}): ${log()}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      return true;
    } catch (error) {
      refused = (error as Error).message;
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  await until(accepts, 'postgres to accept connections').catch((error: Error) => Promise.reject(new Error(`${error.message}: ${refused}\n${log()}`)));
}

/** Makes and starts a private cluster; fsync stays on, so durability tests mean something. */
export async function startPgServer(): Promise<PrivateServer> {
  const bin = binDir();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'agentd-pg-'));
  const data = join(dir, 'data');
  if (user) chownSync(dir, user.uid, user.gid);
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'agentd', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C'], { ...as, stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await freePort();
  const proc = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'shared_buffers=64MB', '-c', 'fsync=on'],
    { ...as, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const url = `postgres://agentd@127.0.0.1:${port}/postgres`;
  await waitReady(url, proc, () => stderr);
  // The server must not keep a test process alive: it is stopped at exit instead.
  proc.unref();
  (proc.stderr as unknown as { unref(): void }).unref();
  return {
    url,
    stop: async () => {
      if (proc.exitCode === null) {
        proc.ref(); // unref'd while it ran: keep the process alive until the server is gone
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGINT'); // fast shutdown
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
    stopNow: () => {
      // pg_ctl waits for the server to be gone, so nothing writes into the dir we remove.
      if (proc.exitCode === null) {
        try {
          execFileSync(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '10'], { ...as, stdio: 'ignore' });
        } catch {
          proc.kill('SIGKILL');
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let shared: Promise<PgServer> | undefined;

/** The run's server: AGENTD_TEST_PG, or one private cluster per process, stopped at exit. */
export function pgServer(): Promise<PgServer> {
  const external = process.env.AGENTD_TEST_PG;
  if (external) return Promise.resolve({ url: external, stop: async () => undefined });
  shared ??= startPgServer().then((server) => {
    // At exit only synchronous work runs: an immediate stop, then the files.
    process.once('exit', () => server.stopNow());
    return server;
  });
  return shared;
}

/** A new empty database on the run's server; its URL. */
export async function freshDatabase(prefix = 'agentd_t'): Promise<string> {
  const { url } = await pgServer();
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

/** Drops a database made by freshDatabase (its connections too). */
export async function dropDatabase(url: string): Promise<void> {
  const admin = new pg.Client({ connectionString: (await pgServer()).url });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startPgServer();
  process.stdout.write(`${server.url}\n`);
  const stop = () => void server.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The server's process is unref'd (see startPgServer): serve until a signal says stop.
  setInterval(() => undefined, 1 << 30);
}
