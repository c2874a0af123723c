import type { LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

/** A lookup that answers with the address the egress proxy already checked, whatever the name: no second resolution. */
export function fixedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return (_host, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as (e: null, a: LookupAddress[]) => void)(null, [{ address, family }]);
    else (callback as (e: null, a: string, f: number) => void)(null, address, family);
  };
}
