import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode as McpErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { AgentdError, ErrorCode, SessionEvents, SessionGet, SessionList, type Event } from '../../protocol/index.js';
import type { DaemonLink, SessionFollower } from '../lib/index.js';
import { explainError } from './tools.js';

export const EVENTS_URI_TEMPLATE = 'agentd://sessions/{sessionId}/events';

export function eventsUri(sessionId: string): string {
  return `agentd://sessions/${sessionId}/events`;
}

const EVENTS_URI = /^agentd:\/\/sessions\/([^/]+)\/events$/;

/** MCP's "resource not found" code (the spec's -32002): the one this server answers a missing resource with. */
export const RESOURCE_NOT_FOUND = -32002;

export function isEventsUri(uri: string): boolean {
  return EVENTS_URI.test(uri);
}

function sessionOf(uri: string): string {
  const match = EVENTS_URI.exec(uri);
  if (!match) throw new McpError(RESOURCE_NOT_FOUND, `Resource not found: ${uri} (agentd's are ${EVENTS_URI_TEMPLATE})`, { uri });
  return decodeURIComponent(match[1]!);
}

function asMcpError(error: unknown, uri: string): McpError {
  if (error instanceof McpError) return error;
  if (error instanceof AgentdError && (error.code === ErrorCode.SessionNotFound || error.code === ErrorCode.InvalidParams)) {
    return new McpError(RESOURCE_NOT_FOUND, `no such resource ${uri}: ${error.message}`, { uri });
  }
  return new McpError(McpErrorCode.InternalError, explainError(error));
}

/** A read returns at most this many events (the newest); agentd_read_events reads any slice. */
const READ_LIMIT = 2000;

async function readEvents(link: DaemonLink, sessionId: string): Promise<{ headSeq: number; events: Event[] }> {
  const { headSeq } = await link.request(SessionGet, { sessionId });
  const events: Event[] = [];
  for (let from: number | undefined = Math.max(0, headSeq - READ_LIMIT); from !== undefined && from < headSeq; ) {
    const page: { events: Event[]; next?: number } = await link.request(SessionEvents, { sessionId, from, to: headSeq });
    events.push(...page.events);
    from = page.next;
  }
  return { headSeq, events };
}

/**
 * Keeps `resources/subscribe` alive on the daemon: one follower per watched session, a
 * `notifications/resources/updated` per batch of new events. Followers resume on the
 * link's next connection after the daemon went away (which, for them alone, does not
 * start a daemon).
 */
class Watcher {
  private readonly watches = new Map<string, SessionFollower>();

  constructor(
    private readonly mcp: McpServer,
    private readonly link: DaemonLink,
    private readonly log: (message: string) => void,
  ) {}

  async add(uri: string): Promise<void> {
    if (this.watches.has(uri)) return;
    const sessionId = sessionOf(uri);
    const { headSeq } = await this.link.request(SessionGet, { sessionId });
    if (this.watches.has(uri)) return;
    const follower = this.link.follow(sessionId, headSeq, {
      onEvents: () => void this.mcp.server.sendResourceUpdated({ uri }).catch(() => undefined),
      onEnded: (error) => {
        this.log(`stopped following ${uri}: ${explainError(error)}`);
        if (this.watches.get(uri) === follower) this.watches.delete(uri);
      },
    });
    this.watches.set(uri, follower);
    // Answered once subscribed: every event from here on is heard of.
    await follower.ready;
  }

  remove(uri: string): void {
    this.watches.get(uri)?.dispose();
    this.watches.delete(uri);
  }

  close(): void {
    for (const follower of this.watches.values()) follower.dispose();
    this.watches.clear();
  }
}

/** Registers the session event logs as resources, with subscribe and unsubscribe. */
export function registerResources(mcp: McpServer, link: DaemonLink, log: (message: string) => void): { close(): void } {
  const template = new ResourceTemplate(EVENTS_URI_TEMPLATE, {
    list: async () => {
      const { sessions } = await link.request(SessionList, { limit: 50 });
      return {
        resources: sessions.map((s) => ({
          uri: eventsUri(s.sessionId),
          name: s.title ? `${s.title} (${s.sessionId})` : s.sessionId,
          description: `Event log of agentd session ${s.sessionId}: ${s.status}, ${s.headSeq} events, workspace ${s.workspace}`,
          mimeType: 'application/json',
        })),
      };
    },
  });
  mcp.registerResource(
    'session-events',
    template,
    {
      title: 'agentd session event log',
      description: `A session's events as JSON {sessionId, headSeq, from, events} (the newest ${READ_LIMIT} at most). Subscribe to hear when new events land.`,
      mimeType: 'application/json',
    },
    async (uri, variables) => {
      const sessionId = String(variables.sessionId);
      try {
        const { headSeq, events } = await readEvents(link, sessionId);
        const body = { sessionId, headSeq, from: events[0]?.seq ?? headSeq, events };
        return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(body) }] };
      } catch (error) {
        throw asMcpError(error, uri.href);
      }
    },
  );

  const watcher = new Watcher(mcp, link, log);
  // No listChanged: the daemon tells no one when sessions are created or archived, so this
  // server could not keep that promise for sessions other clients make.
  mcp.server.registerCapabilities({ resources: { subscribe: true, listChanged: false } });
  mcp.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    try {
      await watcher.add(request.params.uri);
      return {};
    } catch (error) {
      throw asMcpError(error, request.params.uri);
    }
  });
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    watcher.remove(request.params.uri);
    return {};
  });
  return watcher;
}
