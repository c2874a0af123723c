import {
  AgentdError,
  ErrorCode,
  Initialize,
  isCompatibleProtocol,
  PROTOCOL_VERSION,
  Shutdown,
} from '../../protocol/index.js';
import type { Handler } from './context.js';
import { CONNECTION_LIMITS, MAX_FRAME_BYTES, MAX_SUBSCRIPTIONS_PER_CONNECTION } from '../rpc/limits.js';
import { describeAccess } from '../access.js';

export const initialize: Handler<typeof Initialize> = async (params, { peer, daemon }) => {
  if (peer.state !== 'new') throw new AgentdError(ErrorCode.AlreadyInitialized, 'initialize was already sent on this connection');
  if (!isCompatibleProtocol(params.protocolVersion)) {
    throw new AgentdError(
      ErrorCode.ProtocolVersionMismatch,
      `protocol version mismatch: the client speaks ${params.protocolVersion}, this daemon speaks ${PROTOCOL_VERSION}; use a client and daemon from the same agentd release`,
      { clientVersion: params.protocolVersion, daemonVersion: PROTOCOL_VERSION },
    );
  }
  peer.state = 'ready';
  peer.clientName = params.clientInfo.name;
  peer.capabilities = params.capabilities;
  const token = peer.access.kind === 'token' ? { token: peer.access.tokenId, role: peer.access.role } : {};
  daemon.logger.log('info', 'client initialized', { conn: peer.id, client: params.clientInfo.name, version: params.clientInfo.version, ...token });
  return {
    protocolVersion: PROTOCOL_VERSION,
    serverInfo: { name: 'agentd', version: daemon.version },
    capabilities: {
      eventBatches: true,
      maxFrameBytes: MAX_FRAME_BYTES,
      maxRequestsInFlight: CONNECTION_LIMITS.maxRequestsInFlight,
      maxSubscriptions: MAX_SUBSCRIPTIONS_PER_CONNECTION,
    },
    access: describeAccess(peer.access),
  };
};

export const shutdown: Handler<typeof Shutdown> = async (_params, { peer, daemon }) => {
  daemon.hub.closeAll(peer);
  peer.roles.clear();
  peer.state = 'shutdown';
  return null;
};
