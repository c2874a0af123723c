/**
 * Pure mappings between agentd's log and ACP's shapes: prompt content, tool calls,
 * tool results, stop reasons and permission choices. No I/O here, so the adapter's
 * wiring stays separate from what it says.
 */
import { isAbsolute, resolve } from 'node:path';
import type * as acp from '@agentclientprotocol/sdk';
import { z } from 'zod';
import type { ContentBlock, PermissionDecision, UserContentBlock } from '../../protocol/index.js';
import type { ToolUse } from '../lib/index.js';

type ImageMediaType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';
const IMAGE_TYPES = new Set<string>(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** A prompt content block agentd cannot take (audio, binary resources, unknown image types). */
export class UnsupportedContent extends Error {}

/**
 * `_session/steering`, the steering extension claude-agent-acp and codex-acp serve (and
 * advertise with `_meta.steering.supported`): prompt blocks for the turn running now.
 */
export const STEERING_METHOD = '_session/steering';
const SteeringBlock = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text'), text: z.string() }),
  z.looseObject({ type: z.literal('image'), mimeType: z.string(), data: z.string() }),
  z.looseObject({ type: z.literal('resource_link'), uri: z.string(), name: z.string(), title: z.string().nullish() }),
  z.looseObject({ type: z.literal('resource'), resource: z.union([z.looseObject({ uri: z.string(), text: z.string() }), z.looseObject({ uri: z.string(), blob: z.string() })]) }),
]);
export const SteeringParams = z.object({ sessionId: z.string(), prompt: z.array(SteeringBlock).min(1) });
export type SteeringParams = z.infer<typeof SteeringParams>;

/**
 * ACP prompt blocks → agentd user content. Resource links and embedded text resources
 * become text the model can read, since agentd's prompts carry text and images only.
 */
export function promptToAgentd(blocks: acp.ContentBlock[]): UserContentBlock[] {
  const out: UserContentBlock[] = [];
  for (const block of blocks) {
    switch (block.type) {
      case 'text':
        if (block.text) out.push({ type: 'text', text: block.text });
        break;
      case 'image':
        if (!IMAGE_TYPES.has(block.mimeType)) throw new UnsupportedContent(`image type ${block.mimeType} is not supported`);
        out.push({ type: 'image', source: { type: 'base64', media_type: block.mimeType as ImageMediaType, data: block.data } });
        break;
      case 'resource_link':
        out.push({ type: 'text', text: `[${block.title ?? block.name}](${block.uri})` });
        break;
      case 'resource': {
        const r = block.resource;
        if (!('text' in r)) throw new UnsupportedContent(`binary resource ${r.uri} is not supported`);
        out.push({ type: 'text', text: `<resource uri="${r.uri}">\n${r.text}\n</resource>` });
        break;
      }
      default:
        throw new UnsupportedContent(`${(block as { type: string }).type} content is not supported`);
    }
  }
  if (out.length === 0) throw new UnsupportedContent('the prompt is empty');
  return out;
}

/** agentd content (a user message, tool output) → ACP content blocks; tool_use/tool_result are not displayable text. */
export function contentToAcp(content: string | Array<ContentBlock | UserContentBlock>): acp.ContentBlock[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  const out: acp.ContentBlock[] = [];
  for (const block of content) {
    if (block.type === 'text') out.push({ type: 'text', text: block.text });
    else if (block.type === 'image') out.push({ type: 'image', mimeType: block.source.media_type, data: block.source.data });
    else if (block.type === 'tool_result') out.push(...contentToAcp(block.content));
  }
  return out;
}

/** ACP tool kinds let editors pick icons and presentation; agentd's built-ins map directly. */
export function toolKind(name: string): acp.ToolKind {
  switch (name) {
    case 'bash':
      return 'execute';
    case 'read_file':
      return 'read';
    case 'write_file':
    case 'edit_file':
      return 'edit';
    case 'glob':
    case 'grep':
      return 'search';
    case 'network': // a network question: a connection the sandbox makes waits for it
      return 'fetch';
    default:
      return 'other';
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

/** A one-line title an editor can show for the call. */
export function toolTitle(name: string, input: Record<string, unknown>): string {
  const oneLine = (s: string) => (s.length > 120 ? `${s.slice(0, 117)}...` : s).replace(/\s*\n\s*/g, ' ⏎ ');
  switch (name) {
    case 'bash': {
      const command = str(input.command);
      return command ? oneLine(command) : 'bash';
    }
    case 'read_file':
      return `Read ${str(input.path) ?? 'file'}`;
    case 'write_file':
      return `Write ${str(input.path) ?? 'file'}`;
    case 'edit_file':
      return `Edit ${str(input.path) ?? 'file'}`;
    case 'glob':
      return `Find ${str(input.pattern) ?? ''}`.trim();
    case 'grep':
      return `Search ${str(input.pattern) ?? ''}${str(input.path) ? ` in ${str(input.path)}` : ''}`.trim();
    case 'network':
      return `Network access to ${String(input.host)}:${String(input.port)}`;
    default:
      return name;
  }
}

/** Files a call touches, absolute, for the editor's follow-along. */
export function toolLocations(name: string, input: Record<string, unknown>, workspace: string | undefined): acp.ToolCallLocation[] {
  const path = str(input.path);
  if (!path || !['read_file', 'write_file', 'edit_file', 'grep'].includes(name)) return [];
  if (isAbsolute(path)) return [{ path }];
  return workspace ? [{ path: resolve(workspace, path) }] : [];
}

/** The `tool_call` announcing a call the model made. */
export function toolCallOf(toolUseId: string, name: string, input: Record<string, unknown>, workspace: string | undefined): acp.ToolCall {
  return {
    toolCallId: toolUseId,
    title: toolTitle(name, input),
    kind: toolKind(name),
    status: 'pending',
    locations: toolLocations(name, input, workspace),
    rawInput: input,
  };
}

/** The `tool_call_update` carrying a call's result. */
export function toolResultUpdate(call: ToolUse): acp.ToolCallUpdate {
  const result = call.result;
  return {
    toolCallId: call.toolUseId,
    status: result?.isError ? 'failed' : 'completed',
    content: contentToAcp(result?.content ?? []).map((content) => ({ type: 'content' as const, content })),
    rawOutput: { isError: result?.isError ?? false, ...(result?.errorKind ? { errorKind: result.errorKind } : {}) },
  };
}

/**
 * agentd's turn.completed carries the model's last stop reason; ACP has fewer. Stop
 * sequences and pauses end the turn as far as the editor can tell.
 */
export function stopReasonOf(agentd: string | null | undefined): acp.StopReason {
  if (agentd === 'max_tokens') return 'max_tokens';
  if (agentd === 'refusal') return 'refusal';
  return 'end_turn';
}

/** The three choices offered for every agentd permission question. */
export const PERMISSION_OPTIONS: acp.PermissionOption[] = [
  { optionId: 'allow', name: 'Allow', kind: 'allow_once' },
  { optionId: 'allow_always', name: 'Always allow', kind: 'allow_always' },
  { optionId: 'deny', name: 'Reject', kind: 'reject_once' },
];

/** The editor's answer → agentd's decision; anything but an allow option (including cancelled) denies. */
export function decisionOf(response: acp.RequestPermissionResponse): PermissionDecision {
  const outcome = response.outcome;
  if (outcome.outcome !== 'selected') return 'deny';
  const option = PERMISSION_OPTIONS.find((o) => o.optionId === outcome.optionId);
  if (option?.kind === 'allow_once') return 'allow';
  if (option?.kind === 'allow_always') return 'allow_always';
  return 'deny';
}

/** ACP stdio MCP servers → agentd session MCP servers (run inside the session's sandbox). */
/** The header an editor names a vault credential with, for an http MCP server that needs one. */
export const CREDENTIAL_HEADER = 'agentd-credential';

type McpServerSpec = { name: string; command: string; args: string[]; env: Record<string, string> } | { name: string; type: 'http'; url: string; credential?: string };

/**
 * The editor's MCP servers as agentd's: stdio ones run in the sandbox, http ones are
 * called by the daemon. Header values would land in the session log, so an http server
 * may carry only `agentd-credential: NAME` (a vault entry, `agentd vault set NAME --mcp
 * URL`); other headers, and SSE servers, are refused rather than dropped.
 */
export function mcpServersOf(servers: acp.McpServer[]): McpServerSpec[] {
  const out: McpServerSpec[] = [];
  for (const server of servers) {
    const name = server.name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'mcp';
    if ('type' in server && server.type === 'sse') throw new UnsupportedContent(`MCP server ${server.name}: SSE servers are not supported (mcpCapabilities.sse is false); use streamable http`);
    if ('type' in server && server.type === 'http') {
      const other = server.headers.filter((h) => h.name.toLowerCase() !== CREDENTIAL_HEADER);
      if (other.length > 0) {
        throw new UnsupportedContent(
          `MCP server ${server.name}: headers (${other.map((h) => h.name).join(', ')}) are not taken, their values would be stored in the session log; ` +
            `store the secret with \`agentd vault set NAME --mcp ${server.url}\` and pass the header ${CREDENTIAL_HEADER}: NAME instead`,
        );
      }
      const credential = server.headers.find((h) => h.name.toLowerCase() === CREDENTIAL_HEADER)?.value;
      out.push({ name, type: 'http', url: server.url, ...(credential ? { credential } : {}) });
      continue;
    }
    const s = server as acp.McpServerStdio;
    out.push({ name, command: s.command, args: s.args ?? [], env: Object.fromEntries((s.env ?? []).map((e) => [e.name, e.value])) });
  }
  return out;
}
