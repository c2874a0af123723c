import { z } from 'zod';
import { defineRequest } from '../define.js';
import { PermissionDecision } from '../events.js';
import { SessionId } from './session.js';

export const PermissionRequest = defineRequest({
  method: 'permission/request',
  direction: 'daemonToClient',
  scope: 'session',
  description:
    'Asks a client that declared capabilities.permissionRequests whether a tool call may run. The first answer wins.',
  params: z.object({
    sessionId: SessionId,
    toolUseId: z.string(),
    tool: z.string(),
    input: z.record(z.string(), z.unknown()),
  }),
  result: z.object({ decision: PermissionDecision }),
});
