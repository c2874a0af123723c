/**
 * The ACP agent: ACP requests from the editor become agentd requests, and each
 * session the editor opened is followed by a SessionView that streams its log back
 * as `session/update`s.
 */
import * as acp from '@agentclientprotocol/sdk';
import { DaemonLink, notOurSession, socketConnector, type AgentdClient } from '../lib/index.js';
import { AgentdError, ErrorCode, SessionCreate, SessionDelete, SessionGet, SessionId, SessionInterrupt, SessionList, SessionPrompt, SessionSteer } from '../../protocol/index.js';
import { SessionView, type EditorPort } from './session-view.js';
import { mcpServersOf, promptToAgentd, SteeringParams, STEERING_METHOD, stopReasonOf, UnsupportedContent } from './translate.js';

/** Sessions per session/list page. */
const LIST_PAGE = 100;

export interface AgentOptions {
  version: string;
  diag: (message: string) => void;
}

/** Builds the ACP agent app; `shutdown()` lets go of the daemon when the editor leaves. */
export function createAgent(options: AgentOptions): { app: acp.AgentApp; shutdown(): Promise<void> } {
  const { diag } = options;
  const views = new Map<string, SessionView>();
  let editor: acp.AgentContext | undefined;
  /** The editor can show notices (ACP `session.notices`); else warnings go in an agent message. */
  let notices = false;

  const port: EditorPort = {
    get notices() {
      return notices;
    },
    update: (sessionId, update) => requireEditor().notify(acp.methods.client.session.update, { sessionId, update }),
    requestPermission: (params, signal) =>
      requireEditor().request(acp.methods.client.session.requestPermission, params, { cancellationSignal: signal, stopWaitingOnCancel: true }),
  };
  function requireEditor(): acp.AgentContext {
    if (!editor) throw new Error('no editor connected');
    return editor;
  }

  // Made on first use (starting the daemon when none runs, unless it was stopped with
  // `agentd stop`: the editor starting its agent is not a person asking for the daemon),
  // made again after it is lost; views follow on every connection it makes.
  const link = new DaemonLink({
    clientName: 'this ACP editor',
    connector: socketConnector({ clientName: 'agentd-acp', clientVersion: options.version }),
    async onPermissionRequest(question, withdrawn) {
      const view = views.get(question.sessionId);
      if (!view) throw notOurSession(question.sessionId, 'this ACP editor');
      return { decision: await view.askPermission(question, withdrawn) };
    },
    autostartInBackground: false,
  });
  let connected = false;
  link.onState((state) => {
    const lost = connected && state.kind !== 'connected';
    connected = state.kind === 'connected';
    if (state.kind === 'daemonStopped') {
      // Stopped on purpose: it stays stopped until someone starts it (`agentd start`).
      diag(state.message);
      for (const view of views.values()) view.fail(new Error(`lost the agentd daemon: ${state.message}`));
    } else if (lost && state.kind !== 'closed') {
      diag('lost the connection to the agentd daemon; reconnecting');
      // A prompt waits on a turn: reconnect at once (which may start a daemon that crashed).
      if ([...views.values()].some((v) => v.waiting)) {
        link.client().catch((error: Error) => {
          for (const view of views.values()) view.fail(new Error(`lost the agentd daemon: ${error.message}`));
        });
      }
    }
  });

  /** A fresh view of the session from `from` (0: replaying its log to the editor before it returns). */
  async function open(sessionId: string, from = 0): Promise<SessionView> {
    views.get(sessionId)?.dispose();
    const view = new SessionView(sessionId, port, diag);
    views.set(sessionId, view);
    try {
      await daemon();
      await view.open(link, from);
    } catch (error) {
      views.delete(sessionId);
      view.dispose();
      throw error;
    }
    return view;
  }

  async function daemon(): Promise<AgentdClient> {
    try {
      return await link.client();
    } catch (error) {
      throw new acp.RequestError(ErrorCode.InternalError, `cannot reach the agentd daemon: ${(error as Error).message}`);
    }
  }

  function viewOf(sessionId: string): SessionView {
    const view = views.get(sessionId);
    if (!view) throw acp.RequestError.sessionNotFound(sessionId);
    return view;
  }

  const app = acp
    .agent({ name: 'agentd' })
    .onConnect((connection) => {
      editor = connection.client;
    })
    .onRequest(acp.methods.agent.initialize, async ({ params }) => {
      notices = params.clientCapabilities?.session?.notices != null;
      await daemon(); // fail here, visibly, when the daemon cannot be started
      return {
        protocolVersion: acp.PROTOCOL_VERSION,
        agentInfo: { name: 'agentd', title: 'agentd', version: options.version },
        agentCapabilities: {
          loadSession: true,
          promptCapabilities: { image: true, audio: false, embeddedContext: true },
          // Stdio MCP servers run inside the session's sandbox; http ones are called by the daemon.
          mcpCapabilities: { http: true, sse: false },
          sessionCapabilities: { list: {}, resume: {}, close: {}, delete: {} },
        },
        authMethods: [],
        // Input for the running turn: the steering extension other ACP agents serve.
        _meta: { steering: { supported: true } },
      };
    })
    .onRequest(acp.methods.agent.session.new, async ({ params }) => {
      await daemon();
      let mcpServers;
      try {
        mcpServers = mcpServersOf(params.mcpServers ?? []);
      } catch (error) {
        if (error instanceof UnsupportedContent) throw acp.RequestError.invalidParams({ mcpServers: error.message }, error.message);
        throw error;
      }
      const { sessionId } = await translateErrors(() =>
        link.request(SessionCreate, {
          workspace: params.cwd,
          // The editor is asked before each tool runs, unless it answers "always".
          permissions: { default: 'ask' },
          ...(mcpServers.length ? { mcpServers } : {}),
        }),
      );
      await open(sessionId);
      return { sessionId };
    })
    .onRequest(acp.methods.agent.session.load, async ({ params }) => {
      if (!SessionId.safeParse(params.sessionId).success) throw acp.RequestError.sessionNotFound(params.sessionId);
      await daemon();
      await translateErrors(() => link.request(SessionGet, { sessionId: params.sessionId }), params.sessionId);
      await translateErrors(() => open(params.sessionId), params.sessionId);
      await serversNotAdded(params.sessionId, params.mcpServers ?? [], 'load');
      return {};
    })
    .onRequest(acp.methods.agent.session.list, async ({ params }) => {
      await daemon();
      const page = await translateErrors(() =>
        link.request(SessionList, { limit: LIST_PAGE, ...(params.cwd ? { workspace: params.cwd } : {}), ...(params.cursor ? { cursor: params.cursor } : {}) }),
      );
      return {
        sessions: page.sessions.map((s) => ({
          sessionId: s.sessionId,
          cwd: s.workspace,
          ...(s.title !== undefined ? { title: s.title } : {}),
          updatedAt: new Date(s.updatedAt).toISOString(),
        })),
        ...(page.cursor !== undefined ? { nextCursor: page.cursor } : {}),
      };
    })
    .onRequest(acp.methods.agent.session.resume, async ({ params }) => {
      // As session/load, without the replay: the editor already shows the conversation.
      if (!SessionId.safeParse(params.sessionId).success) throw acp.RequestError.sessionNotFound(params.sessionId);
      await daemon();
      const { headSeq } = await translateErrors(() => link.request(SessionGet, { sessionId: params.sessionId }), params.sessionId);
      await translateErrors(() => open(params.sessionId, headSeq), params.sessionId);
      await serversNotAdded(params.sessionId, params.mcpServers ?? [], 'resume');
      return {};
    })
    .onRequest(acp.methods.agent.session.close, async ({ params }) => {
      const view = viewOf(params.sessionId);
      // ACP: closing cancels the session's ongoing work (this editor's prompt), then frees it.
      // A prompt still on its way counts: its turn can be running before the daemon answers it.
      await view.promptsAnswered();
      if (view.waiting) await interrupt(view);
      views.delete(params.sessionId);
      view.close();
      // No longer this editor's to answer: its questions go to the session's other controllers.
      // Only once a queued turn of this editor was stopped as it started: an observer may not interrupt.
      void view.disposed.then(() =>
        link.attach(params.sessionId, 'observer').catch((error: Error) => diag(`detaching from ${params.sessionId} failed: ${error.message}`)),
      );
      return {};
    })
    .onRequest(acp.methods.agent.session.delete, async ({ params }) => {
      if (!SessionId.safeParse(params.sessionId).success) throw acp.RequestError.sessionNotFound(params.sessionId);
      await daemon();
      // agentd's session/delete: the log, a fork's workspace copy and the sub-agents; refused while a turn runs.
      await translateErrors(() => link.request(SessionDelete, { sessionId: params.sessionId }), params.sessionId);
      const view = views.get(params.sessionId);
      views.delete(params.sessionId);
      view?.close();
      return {};
    })
    .onRequest(STEERING_METHOD, { parse: (raw) => SteeringParams.parse(raw) }, async ({ params }) => {
      const view = viewOf(params.sessionId);
      const content = userContent(params.prompt as acp.ContentBlock[]);
      await daemon();
      // The editor shows what it sent: the steer's user.steer is not echoed back to it.
      view.expectOwn(content);
      try {
        const { steered } = await translateErrors(() => link.request(SessionSteer, { sessionId: params.sessionId, content }), params.sessionId);
        return { outcome: steered ? ('injected' as const) : ('startedNewTurn' as const) };
      } catch (error) {
        view.forgetOwn(content);
        throw error;
      }
    })
    .onRequest(acp.methods.agent.session.prompt, async ({ params, signal }) => {
      const view = viewOf(params.sessionId);
      const content = userContent(params.prompt);
      await daemon();
      const cancelsBefore = view.cancels;
      view.expectOwn(content);
      let turnId: string;
      try {
        ({ turnId } = await view.sent(translateErrors(() => link.request(SessionPrompt, { sessionId: params.sessionId, content }), params.sessionId)));
      } catch (error) {
        view.forgetOwn(content);
        throw error;
      }
      view.ownTurn(turnId, content);
      const cancel = () => void interrupt(view);
      signal.addEventListener('abort', cancel, { once: true });
      const ended = view.waitTurn(turnId);
      // Cancelled while the prompt was on its way: the turn it started must stop too.
      if (view.cancels !== cancelsBefore) cancel();
      try {
        const end = await ended;
        // ACP: a prompt the editor cancelled answers `cancelled`, however the turn ended.
        if (view.cancels !== cancelsBefore || end.kind === 'interrupted') return { stopReason: 'cancelled' as const };
        if (end.kind === 'failed') {
          // ACP's stop reasons describe a turn that ended normally; a failure is an error.
          throw new acp.RequestError(ErrorCode.InternalError, `the agentd turn failed: ${end.error}`, { turnId, error: end.error });
        }
        return { stopReason: stopReasonOf(end.stopReason) };
      } finally {
        signal.removeEventListener('abort', cancel);
      }
    })
    .onNotification(acp.methods.agent.session.cancel, async ({ params }) => {
      const view = views.get(params.sessionId);
      if (view) await interrupt(view);
    });

  /** A session's MCP servers are fixed when it is created: those an editor names on load or resume are said to be left out, never dropped silently. */
  async function serversNotAdded(sessionId: string, servers: acp.McpServer[], method: string): Promise<void> {
    if (servers.length === 0) return;
    const description = `session ${sessionId} keeps the MCP servers it was created with; ${servers.map((s) => s.name).join(', ')} (given with session/${method}) are not added`;
    if (notices) await port.update(sessionId, { sessionUpdate: 'notice', severity: 'warning', title: 'agentd: MCP servers not added', description });
    else diag(description);
  }

  async function interrupt(view: SessionView): Promise<void> {
    view.cancels += 1;
    const stop = async () => {
      try {
        await link.request(SessionInterrupt, { sessionId: view.sessionId });
      } catch (error) {
        diag(`interrupting ${view.sessionId} failed: ${(error as Error).message}`);
      }
    };
    // session/interrupt stops whatever turn runs: a prompt of this editor still queued behind
    // another client's turn is stopped when it starts, and answers `cancelled` now.
    const queued = view.queuedOwnTurns;
    for (const turnId of queued) view.cancelQueued(turnId, stop);
    if (queued.length > 0 && !view.waiting) return;
    await stop();
    // After the interrupt, so a "deny" cannot let the turn go on to another model call first.
    view.withdrawPermissions();
  }

  return {
    app,
    async shutdown() {
      for (const view of views.values()) view.dispose();
      views.clear();
      await link.close();
    },
  };
}

/** ACP prompt blocks as agentd content; what agentd cannot carry is the editor's invalid params. */
function userContent(blocks: acp.ContentBlock[]): ReturnType<typeof promptToAgentd> {
  try {
    return promptToAgentd(blocks);
  } catch (error) {
    if (error instanceof UnsupportedContent) throw acp.RequestError.invalidParams(undefined, error.message);
    throw error;
  }
}

/** agentd errors as the ACP errors an editor understands. */
async function translateErrors<T>(fn: () => Promise<T>, sessionId?: string): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof AgentdError)) throw error;
    if (error.code === ErrorCode.SessionNotFound && sessionId) throw acp.RequestError.sessionNotFound(sessionId);
    if (error.code === ErrorCode.InvalidParams) throw acp.RequestError.invalidParams(error.data, error.message);
    throw new acp.RequestError(ErrorCode.InternalError, error.message, { agentdCode: error.code, data: error.data });
  }
}
