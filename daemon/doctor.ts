import { X509Certificate } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { probeContainment, probeIsolation, probeLateBinding, probeLimits } from '../sandbox/provider.js';
import { atLeast, type ContainmentReport, type IsolationReport, type LimitsReport } from '../sandbox/types.js';
import { ConfigError, DEFAULT_CONFIG, loadDaemonConfig, type DaemonConfig } from './config.js';
import { SandboxPolicy } from './containment.js';
import { dataPaths, type DataPaths } from './paths.js';
import { PRESETS } from './proxy/network-policy.js';

interface Finding {
  name: string;
  ok: boolean;
  /** Required findings that fail make doctor exit 1; others are warnings. */
  required: boolean;
  detail: string;
}

async function levelDb(): Promise<Finding> {
  const dir = mkdtempSync(join(tmpdir(), 'agentd-doctor-'));
  try {
    const { ClassicLevel } = await import('classic-level');
    const db = new ClassicLevel<string, string>(dir);
    await db.put('probe', 'ok', { sync: true });
    const value = await db.get('probe');
    await db.close();
    return { name: 'leveldb', ok: value === 'ok', required: true, detail: 'classic-level opens, writes with fsync and reads back' };
  } catch (error) {
    return { name: 'leveldb', ok: false, required: true, detail: `classic-level failed: ${(error as Error).message}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** With AGENTD_LOG set: can the shared log be reached, and who runs what on it. */
async function sharedLog(): Promise<Finding[]> {
  const url = process.env.AGENTD_LOG;
  if (!url) return [];
  const { PgSessionLog, redactPgUrl } = await import('./log/index.js');
  const where = /^postgres(ql)?:\/\//.test(url) ? redactPgUrl(url) : '(not a postgres:// URL)';
  try {
    const log = await PgSessionLog.open(url);
    try {
      const [row] = await log.query<{ sessions: number; running: number; daemons: number }>(
        `SELECT (SELECT count(*) FROM ${log.table('sessions')})::int AS sessions,
                count(*)::int AS running, count(DISTINCT holder)::int AS daemons
         FROM ${log.table('leases')} WHERE expires_at > clock_timestamp()`,
        [],
      );
      const detail = `${where}, schema ${log.schema}: ${row?.sessions ?? 0} sessions, ${row?.running ?? 0} held by ${row?.daemons ?? 0} daemon(s) now`;
      return [{ name: 'shared log', ok: true, required: true, detail }];
    } finally {
      await log.close();
    }
  } catch (error) {
    return [{ name: 'shared log', ok: false, required: true, detail: `${where}: ${(error as Error).message}` }];
  }
}

function dataDir(home: string): Finding {
  if (!existsSync(home)) return { name: 'data dir', ok: true, required: true, detail: `${home} does not exist yet; the daemon creates it (mode 0700)` };
  try {
    const info = statSync(home);
    accessSync(home, constants.W_OK | constants.X_OK);
    const mode = info.mode & 0o777;
    const open = (mode & 0o077) !== 0;
    return { name: 'data dir', ok: !open, required: true, detail: `${home} mode ${mode.toString(8)}${open ? ': readable by other users, run chmod 700 on it' : ''}` };
  } catch (error) {
    return { name: 'data dir', ok: false, required: true, detail: `${home} is not usable: ${(error as Error).message}` };
  }
}

function socket(path: string): Finding {
  if (!existsSync(path)) return { name: 'socket', ok: true, required: false, detail: `${path} absent (no daemon running; clients start one)` };
  const info = statSync(path);
  const mode = info.mode & 0o777;
  const mine = info.uid === process.getuid?.();
  const ok = info.isSocket() && mode === 0o600 && mine;
  return { name: 'socket', ok, required: true, detail: `${path} mode ${mode.toString(8)}, owner uid ${info.uid}${ok ? '' : ': clients will refuse it'}` };
}

interface Containment {
  floor: string;
  levels: Partial<Record<'bwrap' | 'namespaces', ContainmentReport>>;
  limits: LimitsReport;
}

/**
 * How a sandbox is held at each level this machine offers, found by starting one: the uid and
 * capabilities it runs with, its seccomp filter, whether the data dir can be seen from a
 * workspace around it (the default layout: the home dir as workspace), and the limits.
 */
async function containment(paths: DataPaths, isolation: IsolationReport, config: DaemonConfig): Promise<{ findings: Finding[]; report: Containment }> {
  const policy = new SandboxPolicy(config, paths);
  const around = dirname(paths.home);
  const workspace = existsSync(around) && !policy.workspaceProblem(around) ? around : undefined;
  const findings: Finding[] = [];
  const levels: Containment['levels'] = {};
  for (const level of ['bwrap', 'namespaces'] as const) {
    if (!isolation.levels[level].ok) continue;
    const report = await probeContainment(level, [paths.home], workspace);
    levels[level] = report;
    // Only the level sandboxes will use must hold; a weaker one that leaks is a warning.
    const required = level === isolation.best && atLeast(level, config.isolationFloor);
    findings.push(
      { name: `${level}: uid`, ok: report.ok, required, detail: report.uid },
      { name: `${level}: capabilities`, ok: report.ok, required, detail: report.capabilities },
      { name: `${level}: seccomp`, ok: level !== 'bwrap' || report.seccomp.startsWith('seccomp filter'), required: false, detail: report.seccomp },
      { name: `${level}: masked`, ok: report.ok, required, detail: `${report.masked}${workspace ? ` (probed with ${workspace} as the workspace)` : ''}` },
    );
  }
  const limits = probeLimits(isolation.best);
  findings.push(
    { name: 'limits: processes', ok: limits.pids.mechanism !== 'none', required: false, detail: `${limits.pids.mechanism}: ${limits.pids.detail}; at most ${config.sandboxLimits.pids} per sandbox` },
    { name: 'limits: memory', ok: true, required: false, detail: `${limits.memory.mechanism}: ${limits.memory.detail}; at most ${config.sandboxLimits.memoryMb} MB` },
  );
  return { findings, report: { floor: config.isolationFloor, levels, limits } };
}

/**
 * The warm pool: whether a daemon started now would keep one, found by binding a started
 * sandbox to a temp dir for real (the daemon runs the same probe when it starts its pool).
 */
async function poolFinding(config: DaemonConfig, isolation: IsolationReport): Promise<Finding> {
  const size = config.sandboxPool;
  const off = 'sandboxes start cold (set sandbox.pool in config.json to keep some started ahead of need)';
  const check = await probeLateBinding(async (level) => isolation.levels[level]);
  if (size === 0) return { name: 'sandbox pool', ok: true, required: false, detail: `${off}; a pool ${check.ok ? 'would work here' : `would not work here: ${check.detail}`}` };
  return check.ok
    ? { name: 'sandbox pool', ok: true, required: false, detail: `${size} sandboxes kept started and bound on demand (${check.detail})` }
    : { name: 'sandbox pool', ok: false, required: false, detail: `${size} configured, but no pool here: ${check.detail}; sandboxes start cold` };
}

/**
 * The egress proxy: what a new session may reach by default, and the CA it signs with to add
 * credentials on HTTPS hosts they are bound to (made on first use, kept in the data dir).
 */
function egressFindings(paths: DataPaths, config: DaemonConfig): Finding[] {
  const presets = config.networkPresets.map((name) => `${name} (${PRESETS[name].join(', ')})`);
  const caFile = join(paths.proxies, 'ca', 'ca.pem');
  const ca = existsSync(caFile) ? new X509Certificate(readFileSync(caFile)) : undefined;
  return [
    {
      name: 'egress proxy',
      ok: true,
      required: false,
      detail: `one per session on a unix socket under ${paths.proxies}, the sandbox's only way out; new sessions: default deny${presets.length ? `, presets ${presets.join('; ')}` : ', no presets (set network.presets in config.json or AGENTD_NETWORK_PRESETS)'}`,
    },
    {
      name: 'egress CA',
      ok: true,
      required: false,
      detail: ca
        ? `${caFile}, SHA-256 ${ca.fingerprint256}, valid until ${ca.validTo}; trusted only inside sandboxes of sessions with credentials`
        : `not made yet: made in ${dirname(caFile)} when a session with credentials first starts a sandbox`,
    },
  ];
}

function floorFinding(paths: DataPaths): { finding: Finding; config: DaemonConfig } {
  try {
    const config = loadDaemonConfig(paths.config);
    const weak = config.isolationFloor !== 'bwrap';
    return {
      config,
      finding: { name: 'isolation floor', ok: !weak, required: false, detail: `${config.isolationFloor} (from ${config.floorSource})${weak ? ': sessions may ask for weaker isolation than bubblewrap' : ''}` },
    };
  } catch (error) {
    const detail = error instanceof ConfigError ? error.message : String(error);
    return { config: DEFAULT_CONFIG, finding: { name: 'isolation floor', ok: false, required: true, detail: `the daemon would not start: ${detail}` } };
  }
}

/**
 * `agentd doctor`: what this machine offers agentd, and why. Exits 1 when something
 * required is missing; weaker isolation is a warning (the sandbox degrades loudly).
 */
export async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const paths = dataPaths();
  const isolation = await probeIsolation();
  const floor = floorFinding(paths);
  const contained = await containment(paths, isolation, floor.config);
  const major = Number(process.versions.node.split('.')[0]);
  const findings: Finding[] = [
    { name: 'node', ok: major >= 20, required: true, detail: `node ${process.versions.node}${major >= 20 ? '' : ': agentd needs node 20 or later'}` },
    { name: 'isolation', ok: isolation.best === 'bwrap', required: false, detail: `best available: ${isolation.best}${isolation.best === 'bwrap' ? '' : ' (install bubblewrap for full isolation)'}` },
    ...(['bwrap', 'namespaces', 'none'] as const).map((level) => ({ name: `isolation.${level}`, ok: isolation.levels[level].ok, required: false, detail: isolation.levels[level].detail })),
    { name: 'user namespaces', ok: isolation.userNamespaces.ok, required: false, detail: isolation.userNamespaces.detail },
    { name: 'network namespaces', ok: isolation.netNamespaces.ok, required: false, detail: isolation.netNamespaces.detail },
    { name: 'node-pty', ok: isolation.nodePty.ok, required: true, detail: isolation.nodePty.detail },
    { name: 'ripgrep', ok: isolation.ripgrep.ok, required: false, detail: isolation.ripgrep.detail },
    floor.finding,
    ...contained.findings,
    await poolFinding(floor.config, isolation),
    ...egressFindings(paths, floor.config),
    await levelDb(),
    ...(await sharedLog()),
    dataDir(paths.home),
    socket(paths.socket),
  ];
  const failed = findings.filter((f) => f.required && !f.ok);
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: failed.length === 0, isolation: isolation.best, containment: contained.report, findings })}\n`);
  } else {
    for (const f of findings) process.stdout.write(`${f.ok ? 'ok  ' : f.required ? 'FAIL' : 'warn'}  ${f.name.padEnd(24)} ${f.detail}\n`);
    process.stdout.write(failed.length === 0 ? `\nagentd can run here; sandboxes will use ${isolation.best} isolation.\n` : `\n${failed.length} required check(s) failed.\n`);
  }
  return failed.length === 0 ? 0 : 1;
}
