import type { EventOf } from '../../protocol/events.js';

/**
 * What every client says when a sandbox runs weaker than bubblewrap: one line per
 * warning of the sandbox.provisioned event (the daemon's own words), none at `bwrap`.
 */
export function weakerIsolation(data: EventOf<'sandbox.provisioned'>['data']): string[] {
  if (data.isolation === 'bwrap') return [];
  const warnings = data.warnings ?? [];
  return warnings.length > 0 ? warnings : [`the sandbox runs at isolation level ${data.isolation}, weaker than bubblewrap`];
}
