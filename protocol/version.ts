/**
 * The wire protocol version. A client and the daemon must agree on the major part;
 * the minor part grows when methods or event types are added (clients ignore what
 * they do not know).
 */
export const PROTOCOL_VERSION = '1.0';

export function protocolMajor(version: string): string {
  return version.split('.')[0] ?? version;
}

export function isCompatibleProtocol(clientVersion: string): boolean {
  return protocolMajor(clientVersion) === protocolMajor(PROTOCOL_VERSION);
}
