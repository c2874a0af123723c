import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode as McpErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { AgentdError, ErrorCode, SessionEvents, SessionGet, SessionList, type Event } from '../../protocol/index.js';
import type { AgentdClient } from '../lib/index.js';
import type { DaemonLink } from './link.js';
import { explainError } from './tools.js';

export const EVENTS_URI_TEMPLATE = 'agentd://sessions/{sessionId}/events';

export function eventsUri(sessionId: string): string {
  return `agentd://sessions/${sessionId}/events`;
}

function sessionOf(uri: string): string {
  const match = /^agentd:\/\/sessions\/([^/]+)\/events$/.exec(uri);
  if (!match) throw new McpError(McpErrorCode.InvalidParams, `not an agentd resource: ${uri} (expected ${EVENTS_URI_TEMPLATE})`);
  return decodeURIComponent(match[1]!);
}

/** MCP's "resource not found" code (the spec's -32002). */
const RESOURCE_NOT_FOUND = -32002;

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

interface Watch {
  uri: string;
  sessionId: string;
  /** The next seq to hear about; resubscription after a reconnect starts there. */
  next: number;
  /** Set while a daemon subscription is being made or lives. */
  attached: boolean;
  unsubscribe?: () => Promise<void>;
}

/**
 * Keeps `resources/subscribe` alive on the daemon: one daemon subscription per
 * watched session, a `notifications/resources/updated` per batch of new events.
 * When the daemon connection drops, watches are re-established from where they were
 * as soon as a daemon answers again (without starting one: a stopped daemon stays
 * stopped until someone calls a tool).
 */
class Watcher {
  private readonly watches = new Map<string, Watch>();
  private retry: NodeJS.Timeout | undefined;
  private retryDelay = 200;

  constructor(
    private readonly mcp: McpServer,
    private readonly link: DaemonLink,
    private readonly log: (message: string) => void,
  ) {
    link.onConnected((client) => {
      for (const watch of this.watches.values()) if (!watch.attached) void this.attach(client, watch);
    });
    link.onLost(() => {
      for (const watch of this.watches.values()) {
        watch.attached = false;
        delete watch.unsubscribe;
      }
      if (this.watches.size > 0) this.scheduleReconnect();
    });
  }

  async add(uri: string): Promise<void> {
    if (this.watches.has(uri)) return;
    const sessionId = sessionOf(uri);
    const { headSeq } = await this.link.request(SessionGet, { sessionId });
    const watch: Watch = { uri, sessionId, next: headSeq, attached: false };
    this.watches.set(uri, watch);
    const client = await this.link.client();
    if (!watch.attached) await this.attach(client, watch);
  }

  async remove(uri: string): Promise<void> {
    const watch = this.watches.get(uri);
    this.watches.delete(uri);
    await watch?.unsubscribe?.().catch(() => undefined);
  }

  private async attach(client: AgentdClient, watch: Watch): Promise<void> {
    watch.attached = true;
    try {
      const sub = await client.subscribe(watch.sessionId, watch.next, {
        onEvents: (events) => {
          const last = events[events.length - 1]!;
          if (this.watches.get(watch.uri) !== watch || last.seq < watch.next) return;
          watch.next = last.seq + 1;
          this.mcp.server.sendResourceUpdated({ uri: watch.uri }).catch(() => undefined);
        },
        onDropped: () => {
          // Too slow for the daemon's buffer: pick up from `next` on the same connection.
          watch.attached = false;
          delete watch.unsubscribe;
          if (this.watches.get(watch.uri) === watch) void this.attach(client, watch);
        },
      });
      if (this.watches.get(watch.uri) !== watch) {
        await sub.unsubscribe().catch(() => undefined);
        return;
      }
      watch.unsubscribe = sub.unsubscribe;
    } catch (error) {
      watch.attached = false;
      this.log(`could not follow ${watch.uri}: ${explainError(error)}`);
    }
  }

  private scheduleReconnect(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.watches.size === 0) return;
      this.link.client(false).then(
        () => (this.retryDelay = 200),
        () => {
          this.retryDelay = Math.min(this.retryDelay * 2, 5000);
          this.scheduleReconnect();
        },
      );
    }, this.retryDelay);
    // Waiting to resubscribe must not keep the process alive once the host is gone.
    this.retry.unref();
  }

  close(): void {
    if (this.retry) clearTimeout(this.retry);
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
  mcp.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
  mcp.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    try {
      await watcher.add(request.params.uri);
      return {};
    } catch (error) {
      throw asMcpError(error, request.params.uri);
    }
  });
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    await watcher.remove(request.params.uri);
    return {};
  });
  return watcher;
}
