/**
 * The host patterns of a network policy (`allow`, `deny`): their grammar is part of the
 * contract, so a pattern the proxy could never match is refused where it is given, not
 * ignored where it is used (a `deny` entry that silently matched nothing would let the
 * host through).
 */
import { z } from 'zod';
import { FieldLimits as L } from './limits.js';

export interface HostPattern {
  /** Lower case; `*.` prefix for subdomains, `*` alone for every host. */
  host: string;
  /** undefined: 80 and 443; '*': any. */
  port: number | '*' | undefined;
}

/** Lower case, no brackets around an IPv6 literal, no trailing dot. */
export function normalHost(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

/** The pattern that names exactly this host and port (an IPv6 literal in brackets). */
export function exactPattern(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** `host`, `host:port`, `host:*`, `[v6]:port`, `*.suffix`, `*`; undefined when it is none of those. */
export function parseHostPattern(text: string): HostPattern | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s@]+)(?::(\*|\d{1,5}))?$/.exec(text.trim());
  if (!m) return undefined;
  const host = normalHost(m[1]!);
  const port = m[2] === undefined ? undefined : m[2] === '*' ? '*' : Number(m[2]);
  if (typeof port === 'number' && (port < 1 || port > 65535)) return undefined;
  if (host.includes('*') && host !== '*' && !/^\*\.[^*]+$/.test(host)) return undefined;
  return { host, port };
}

/** `allow` and `deny`: each entry a pattern parseHostPattern reads. */
export const hostPatterns = z
  .array(
    z
      .string()
      .max(L.nameChars)
      .refine((text) => parseHostPattern(text) !== undefined, { error: (issue) => `not a host pattern (host, host:port, host:*, *.domain): ${JSON.stringify(issue.input)}` }),
  )
  .max(L.listItems);

/**
 * Where a session's sandbox may connect through the egress proxy. Patterns: `github.com`,
 * `*.npmjs.org` (subdomains only), `host:port`, `host:*`; without a port, 80 and 443.
 * Deny wins; loopback, private and link-local addresses are refused unless a host is named
 * exactly (no wildcard) in `allow`. `presets` add named host lists (their hosts are listed in the README).
 */
export const NetworkPolicy = z.object({
  default: z.enum(['deny', 'ask', 'allow']),
  allow: hostPatterns.optional(),
  deny: hostPatterns.optional(),
  presets: z.array(z.enum(['package-registries'])).max(L.listItems).optional(),
});
export type NetworkPolicy = z.infer<typeof NetworkPolicy>;

/**
 * A policy as the daemon shows it (session/get, network.changed): the lists as they were
 * stored, so one written before patterns were checked still reads; `added` holds the
 * hosts (`host:port`) that answers (allow always) added to `allow`.
 */
const shownList = z.array(z.string()).max(L.listItems);
export const NetworkPolicyShown = NetworkPolicy.extend({ allow: shownList.optional(), deny: shownList.optional(), added: z.array(z.string()) });
export type NetworkPolicyShown = z.infer<typeof NetworkPolicyShown>;
