/**
 * What a session's runner is set up with, from the session's record: its system prompt,
 * the tools offered to the model, its remote MCP servers, and what the sandbox slot
 * records when a sandbox comes and goes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox, ToolDefinition } from '../../sandbox/types.js';
import { appendEvents } from '../events.js';
import type { SessionLog } from '../log/session-log.js';
import type { ApiTool } from './context.js';
import { AGENT_TOOL, AGENT_TOOL_NAME } from './agent-tool.js';
import type { HarnessLogger, HarnessSession } from './deps.js';
import type { RemoteMcpServers, RemoteServerSpec } from './remote-mcp.js';
import type { SlotEvents, ToolSlot } from './sandbox-slot.js';

/** What the agent is told it is, then the session's own system prompt. */
export function systemPrompt(record: HarnessSession): string {
  const base =
    `You are a coding agent working in the workspace ${record.workspace}, inside an isolated sandbox. ` +
    'Use the tools to read, search and change files and to run commands there; paths are relative to the workspace. ' +
    'Work step by step, check results, and finish with a short answer saying what you did.';
  return record.config.system ? `${base}\n\n${record.config.system}` : base;
}

/**
 * Clones the session's repos into the workspace from inside the sandbox, through the
 * proxy: the remote written into .git/config is the proxy's in-sandbox address, which
 * holds no token. A repo already in the workspace is left as it is.
 */
async function cloneRepos(sandbox: Sandbox, record: HarnessSession): Promise<Array<{ path: string; cloned: boolean; error?: string }>> {
  const out: Array<{ path: string; cloned: boolean; error?: string }> = [];
  for (const repo of record.config.repos ?? []) {
    if (existsSync(join(record.workspace, repo.path))) {
      out.push({ path: repo.path, cloned: false });
      continue;
    }
    const quoted = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const result = await sandbox.execute('bash', { command: `git clone -q "$AGENTD_PROXY/${repo.credential}" ${quoted(repo.path)}`, timeout_ms: 300_000 });
    const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
    out.push(result.isError || !/\[exit code: 0\]/.test(text) ? { path: repo.path, cloned: false, error: text.slice(0, 2000) } : { path: repo.path, cloned: true });
  }
  return out;
}

function apiTool(t: ToolDefinition): ApiTool {
  return { name: t.name, description: t.description, input_schema: t.inputSchema };
}

/**
 * The tools offered to the model come from the provider's built-in catalogue, so the first
 * model call never waits for a sandbox. Only a session's own MCP servers need one
 * started to list their tools, once; the list is kept in the session's metadata.
 */
export async function offeredTools(record: HarnessSession, builtin: readonly ToolDefinition[], slot: ToolSlot, log: SessionLog): Promise<ApiTool[]> {
  const allowed = record.config.tools ? new Set(record.config.tools) : undefined;
  let defs: ToolDefinition[] = [...builtin];
  const hasServers = (record.config.mcpServers ?? []).some((s) => 'command' in s);
  if (hasServers) {
    let catalog = record.toolCatalog;
    if (!catalog) {
      catalog = (await (await slot.get()).tools()).filter((t) => t.name.startsWith('mcp__'));
      await log.patchMeta(record.sessionId, { toolCatalog: catalog });
    }
    defs = [...defs, ...catalog];
  }
  // Sub-agents are one level deep: a sub-agent is not offered `agent`.
  const agent = record.parent || (allowed && !allowed.has(AGENT_TOOL_NAME)) ? [] : [AGENT_TOOL];
  return [...defs.filter((t) => !allowed || allowed.has(t.name)).map(apiTool), ...agent];
}

/** Remote MCP servers of the session, with the Authorization header the daemon forms from the vault. */
export async function remoteServerSpecs(
  record: HarnessSession,
  authorization: (credential: string, url: string) => Promise<string | undefined>,
): Promise<RemoteServerSpec[]> {
  const specs: RemoteServerSpec[] = [];
  for (const server of record.config.mcpServers ?? []) {
    if (!('type' in server)) continue;
    const header = server.credential ? await authorization(server.credential, server.url) : undefined;
    specs.push({ name: server.name, url: server.url, ...(header ? { authorization: header } : {}) });
  }
  return specs;
}

/** The remote servers' tools the session allows; none (and a warning) when the servers cannot be reached. */
export async function remoteTools(record: HarnessSession, remote: RemoteMcpServers, logger: HarnessLogger): Promise<ApiTool[]> {
  const allowed = record.config.tools ? new Set(record.config.tools) : undefined;
  try {
    return (await remote.tools()).filter((t) => !allowed || allowed.has(t.name));
  } catch (error) {
    logger.log('warn', 'remote MCP servers unavailable; their tools are not offered', { sessionId: record.sessionId, error: (error as Error).message });
    return [];
  }
}

/** What the session's log records when its sandbox is provisioned (repos cloned first) or lost. */
export function sandboxNotices(record: HarnessSession, log: SessionLog, logger: HarnessLogger): SlotEvents {
  const { sessionId } = record;
  return {
    provisioned: async (sandbox, durationMs) => {
      for (const warning of sandbox.warnings) logger.log('warn', warning, { sessionId });
      const repos = await cloneRepos(sandbox, record);
      await appendEvents(log, sessionId, [
        {
          type: 'sandbox.provisioned',
          data: {
            sandboxId: sandbox.id,
            isolation: sandbox.isolation,
            durationMs: Math.round(durationMs),
            pooled: sandbox.pooled,
            warnings: sandbox.warnings,
            ...(sandbox.limits ? { limits: sandbox.limits } : {}),
            ...(repos.length ? { repos } : {}),
          },
        },
      ]);
    },
    lost: async (reason) => {
      logger.log('warn', 'sandbox lost', { sessionId, reason });
      await appendEvents(log, sessionId, [{ type: 'sandbox.lost', data: { reason } }]).catch(() => undefined);
    },
  };
}
