/**
 * The network options `agentd new` and `agentd run` share: a session's egress policy on the
 * command line. None given: the daemon's default (deny, plus the presets its configuration enables).
 */
import { NetworkPolicy } from '../../protocol/index.js';
import { UsageError, type Options, type Values } from './context.js';

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

/** The session/create `network` field the options ask for, or undefined when none was given. */
export function networkOption(values: Values): NetworkPolicy | undefined {
  const allow = list(values['allow-host']);
  const deny = list(values['deny-host']);
  const presets = list(values.preset);
  if (values.network === undefined && allow.length + deny.length + presets.length === 0) return undefined;
  const parsed = NetworkPolicy.safeParse({
    default: values.network ?? 'deny',
    ...(allow.length ? { allow } : {}),
    ...(deny.length ? { deny } : {}),
    ...(presets.length ? { presets } : {}),
  });
  if (!parsed.success) throw new UsageError(`network options: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'network'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
