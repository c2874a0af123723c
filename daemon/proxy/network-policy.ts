/**
 * What a session's network policy says about one host and port, and which addresses a
 * connection may reach. Pure: the egress proxy (egress.ts) asks, resolves and connects.
 */
import { BlockList, isIP } from 'node:net';
import { normalHost, parseHostPattern, type HostPattern, type NetworkPolicy } from '../../protocol/index.js';

/**
 * Named host lists a policy may include. The registries' own hosts, nothing else: a
 * package's install script that fetches from elsewhere is decided like any other host.
 */
export const PRESETS: Record<NonNullable<NetworkPolicy['presets']>[number], readonly string[]> = {
  'package-registries': [
    // npm (and yarn's mirror of it)
    'registry.npmjs.org',
    'registry.yarnpkg.com',
    // PyPI: the index and the files it links to
    'pypi.org',
    'files.pythonhosted.org',
    // crates.io: the API, the sparse index and the crate files
    'crates.io',
    'index.crates.io',
    'static.crates.io',
    // Debian's archive and its security updates
    'deb.debian.org',
    'security.debian.org',
  ],
};

/** Ports a pattern without one allows: plain HTTP and HTTPS. */
const WEB_PORTS = [80, 443];

/** `answered`: decided by a person's answer (now, or an earlier "allow always"). */
export type NetworkVerdict = { decision: 'allow' | 'deny' | 'ask'; reason: string; answered?: boolean };

function portMatches(pattern: HostPattern, port: number): boolean {
  return pattern.port === '*' || (pattern.port === undefined ? WEB_PORTS.includes(port) : pattern.port === port);
}

function hostMatches(pattern: HostPattern, host: string): boolean {
  if (pattern.host === '*') return true;
  if (pattern.host.startsWith('*.')) return host.endsWith(pattern.host.slice(1)) && host.length > pattern.host.length - 1;
  return pattern.host === host;
}

function firstMatch(patterns: readonly string[], host: string, port: number): string | undefined {
  return patterns.find((text) => {
    const pattern = parseHostPattern(text);
    return pattern !== undefined && hostMatches(pattern, host) && portMatches(pattern, port);
  });
}

/** The allow list with the presets' hosts and the hosts answers added. */
function allowList(policy: NetworkPolicy, added: readonly string[], bound: readonly string[]): Array<{ pattern: string; from: string; answered?: boolean }> {
  return [
    ...bound.map((pattern) => ({ pattern, from: `a credential of the session is bound to "${pattern}"` })),
    ...(policy.allow ?? []).map((pattern) => ({ pattern, from: `allow "${pattern}"` })),
    ...(policy.presets ?? []).flatMap((name) => PRESETS[name].map((pattern) => ({ pattern, from: `preset ${name} ("${pattern}")` }))),
    ...added.map((pattern) => ({ pattern, from: `answered allow always ("${pattern}")`, answered: true })),
  ];
}

/**
 * Deny wins over every allow; then the origins the session's credentials are bound to
 * (`bound`, host:port), the allow list, presets and answers; then the default.
 */
export function decideHost(policy: NetworkPolicy, added: readonly string[], bound: readonly string[], host: string, port: number): NetworkVerdict {
  const name = normalHost(host);
  const denied = firstMatch(policy.deny ?? [], name, port);
  if (denied) return { decision: 'deny', reason: `deny "${denied}"` };
  const allowed = allowList(policy, added, bound).find((entry) => firstMatch([entry.pattern], name, port));
  if (allowed) return { decision: 'allow', reason: allowed.from, ...(allowed.answered ? { answered: true } : {}) };
  return { decision: policy.default, reason: `default ${policy.default}` };
}

/**
 * Whether the host is named exactly (no wildcard) in the session's own allow list for this
 * port, or a credential is bound to it: only such a host may lead to a loopback or private
 * address. Not presets; an answer
 * only for an address literal (the person saw the address): one who allowed `example.com`
 * did not allow what it may resolve to next.
 */
export function namedExactly(policy: NetworkPolicy, bound: readonly string[], verdict: NetworkVerdict, host: string, port: number): boolean {
  const name = normalHost(host);
  if (verdict.answered && isIP(name) !== 0) return true;
  return [...(policy.allow ?? []), ...bound].some((pattern) => {
    const parsed = parseHostPattern(pattern);
    return parsed !== undefined && !parsed.host.includes('*') && parsed.host === name && portMatches(parsed, port);
  });
}

/** Addresses no host reaches unless named exactly: this machine, private networks, link-local (cloud metadata), and the unroutable. */
const INTERNAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches this machine
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local: 169.254.169.254 is the cloud metadata service
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 of any IPv4, internal ones included
] as const) {
  INTERNAL.addSubnet(net, bits, 'ipv6');
}

/** Whether an address is loopback, private, link-local or otherwise not of the internet. IPv4-mapped IPv6 is judged as its IPv4. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true; // not an address: never connect to it
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return INTERNAL.check(mapped[1]!, 'ipv4');
  if (family === 6 && /^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/i.test(address)) {
    const [hi, lo] = address.slice(7).split(':').map((h) => parseInt(h, 16));
    return INTERNAL.check(`${hi! >> 8}.${hi! & 255}.${lo! >> 8}.${lo! & 255}`, 'ipv4');
  }
  return INTERNAL.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
