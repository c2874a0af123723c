import { z } from 'zod';
import { clientRequest } from '../define.js';
import { FieldLimits as L } from '../limits.js';
import { SessionId } from './session.js';

export const ClientInfo = z.object({ name: z.string().min(1).max(L.nameChars), version: z.string().max(L.nameChars).optional() });

export const ClientCapabilities = z.object({
  /** The client answers `permission/request`. */
  permissionRequests: z.boolean().optional(),
});
export type ClientCapabilities = z.infer<typeof ClientCapabilities>;

export const Initialize = clientRequest('initialize', {
  scope: 'global',
  description: 'Must be the first request on a connection; agrees on the protocol version.',
  params: z.object({
    protocolVersion: z.string().min(1).max(L.nameChars),
    clientInfo: ClientInfo,
    capabilities: ClientCapabilities.default({}),
  }),
  result: z.object({
    protocolVersion: z.string(),
    serverInfo: z.object({ name: z.string(), version: z.string() }),
    capabilities: z.object({
      eventBatches: z.boolean(),
      maxFrameBytes: z.number().int(),
      /** Requests one connection may have in flight; the next is refused with LimitExceeded (clients queue instead). */
      maxRequestsInFlight: z.number().int().optional(),
      /** Subscriptions one connection may hold. */
      maxSubscriptions: z.number().int().optional(),
    }),
    /**
     * What this connection may do: `owner` on the local socket (everything); over the
     * network, its token's role and session scope (protocol/methods/token.ts).
     */
    access: z
      .object({
        role: z.enum(['owner', 'controller', 'observer']),
        /** The sessions a scoped token sees; absent: every session. */
        sessions: z.array(SessionId).optional(),
        /** The token's name, for clients to show who they are connected as. */
        tokenName: z.string().optional(),
      })
      .optional(),
  }),
});

export const Shutdown = clientRequest('shutdown', {
  scope: 'global',
  description: "Ends this connection's session with the daemon: its subscriptions are freed; the daemon keeps running.",
  params: z.object({}).optional(),
  result: z.null(),
});
