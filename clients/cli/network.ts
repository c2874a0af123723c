/**
 * The network options `agentd new` and `agentd run` share: a session's egress policy on the
 * command line. None given: the daemon's default (deny, plus the presets its configuration enables).
 * `agentd network` shows a session's policy and changes it afterwards.
 */
import { z } from 'zod';
import { NetworkPolicy, SessionGet, SessionSetNetwork, type NetworkPolicyShown } from '../../protocol/index.js';
import { sessionIdArg, UsageError, type Command, type Options, type Values } from './context.js';

export const NETWORK_USAGE = [
  'Network (through the egress proxy): --network deny|ask|allow (default deny), --allow-host PATTERN,',
  '--deny-host PATTERN (each repeatable; github.com, *.npmjs.org, host:port, host:*), --preset NAME',
  '(package-registries). ask: a connection to an undecided host waits for an answer here or in any client.',
].join('\n');

export const NETWORK_OPTIONS: Options = {
  network: { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'deny-host': { type: 'string', multiple: true },
  preset: { type: 'string', multiple: true },
};

const list = (value: Values[string]): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

/** `value` as `schema` reads it, or a usage error naming each field the options got wrong. */
function checkedPolicy<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UsageError(`network options: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'network'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** The session/create `network` field the options ask for, or undefined when none was given. */
export function networkOption(values: Values): NetworkPolicy | undefined {
  const allow = list(values['allow-host']);
  const deny = list(values['deny-host']);
  const presets = list(values.preset);
  if (values.network === undefined && allow.length + deny.length + presets.length === 0) return undefined;
  return checkedPolicy(NetworkPolicy, {
    default: values.network ?? 'deny',
    ...(allow.length ? { allow } : {}),
    ...(deny.length ? { deny } : {}),
    ...(presets.length ? { presets } : {}),
  });
}

/** What a session's policy reads like in a terminal. */
function renderNetwork(sessionId: string, shown: NetworkPolicyShown): string {
  const row = (label: string, items: readonly string[] | undefined) => `  ${label.padEnd(9)}${items?.length ? items.join(', ') : '-'}`;
  return [
    `network of ${sessionId}: default ${shown.default}`,
    row('allow', shown.allow),
    row('deny', shown.deny),
    row('presets', shown.presets),
    row('answered', shown.added),
  ].join('\n');
}

const unique = <T>(items: T[]): T[] | undefined => (items.length > 0 ? [...new Set(items)] : undefined);

export const network: Command = {
  usage: [
    'agentd network <sessionId> [--network deny|ask|allow] [--allow-host PATTERN] [--deny-host PATTERN] [--preset NAME] [--forget PATTERN|NAME] [--json]',
    '',
    "Shows the session's network policy. With options, changes it from its next connection on:",
    '--network sets the default; --allow-host, --deny-host and --preset add to its lists (each repeatable);',
    '--forget takes a pattern or preset out of them and out of the hosts answers added.',
  ].join('\n'),
  summary: "show or change a session's network policy: the hosts its sandbox may reach",
  options: { ...NETWORK_OPTIONS, forget: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  args: ['sessionId'],
  params: { 'network.default': '--network', 'network.allow': '--allow-host', 'network.deny': '--deny-host', 'network.presets': '--preset', 'network.added': '--forget' },
  async run({ values, positionals }, ctx) {
    const sessionId = sessionIdArg(positionals, 0);
    const client = await ctx.connect();
    const now = (await client.request(SessionGet, { sessionId })).network ?? { default: 'deny', added: [] };
    const [allow, deny, presets, forget] = [list(values['allow-host']), list(values['deny-host']), list(values.preset), list(values.forget)];
    if (values.network === undefined && allow.length + deny.length + presets.length + forget.length === 0) {
      ctx.print(values, now, (shown) => renderNetwork(sessionId, shown));
      return 0;
    }
    const known = [...(now.allow ?? []), ...(now.deny ?? []), ...(now.presets ?? []), ...now.added];
    const unknown = forget.filter((item) => !known.includes(item));
    if (unknown.length > 0) throw new UsageError(`--forget ${unknown.join(', ')}: not in the session's policy (allow, deny, presets or answered); \`agentd network ${sessionId}\` shows it`);
    const kept = <T extends string>(items: readonly T[] | undefined): T[] => (items ?? []).filter((item) => !forget.includes(item));
    const next = {
      default: values.network ?? now.default,
      allow: unique([...kept(now.allow), ...allow]),
      deny: unique([...kept(now.deny), ...deny]),
      presets: unique([...kept(now.presets), ...presets]),
      // Sent only when something leaves it, so an answer given meanwhile is not undone.
      added: now.added.some((host) => forget.includes(host)) ? kept(now.added) : undefined,
    };
    const policy = checkedPolicy(NetworkPolicy.extend({ added: z.array(z.string()).optional() }), Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined)));
    const { network: shown } = await client.request(SessionSetNetwork, { sessionId, network: policy });
    ctx.print(values, shown, (policy) => renderNetwork(sessionId, policy));
    return 0;
  },
};
