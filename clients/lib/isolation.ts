/**
 * What every client says when a sandbox runs weaker than bubblewrap: one line per
 * warning of the sandbox.provisioned event (the daemon's own words), none at `bwrap`.
 */
export function weakerIsolation(data: Record<string, unknown>): string[] {
  const isolation = String(data.isolation ?? 'unknown');
  if (isolation === 'bwrap') return [];
  const warnings = Array.isArray(data.warnings) ? data.warnings.filter((w): w is string => typeof w === 'string') : [];
  return warnings.length > 0 ? warnings : [`the sandbox runs at isolation level ${isolation}, weaker than bubblewrap`];
}
