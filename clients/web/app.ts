/**
 * agentd's web client, served by the daemon at / on its listen address. It logs in once
 * (the token is posted to /login and exchanged for an HttpOnly session cookie; it is
 * kept nowhere), then speaks the daemon's JSON-RPC over the same WebSocket as every
 * client: the sessions list with status and the daemon running each, a live session
 * view, approvals (the first answer anywhere wins), and prompt, steer (while a turn runs) and interrupt for
 * controllers; observers get the same view read-only. When the connection drops it
 * reconnects, and the shared follower (clients/lib/follower.ts) follows on from the last
 * event the page applied, into the shared fold (clients/lib/chat-view.ts over
 * clients/lib/transcript.ts).
 */
import { PROTOCOL_VERSION } from '../../protocol/version.js';
import { AgentdError } from '../../protocol/errors.js';
import { DaemonStoppingNotification } from '../../protocol/methods/daemon.js';
import { PermissionRequest } from '../../protocol/methods/permission.js';
import type { SessionInfo } from '../../protocol/methods/session.js';
import type { Event as SessionEvent } from '../../protocol/events.js';
import { ChatModel } from '../lib/chat-view.js';
import { SessionFollower, type ClientSource, type FollowedConnection } from '../lib/follower.js';
import { approvalCard, h, renderChat, type Approval, type Decision } from './render.js';
import { Rpc } from './rpc.js';

interface Access {
  role: 'owner' | 'controller' | 'observer';
  sessions?: string[];
  tokenName?: string;
}

interface Followed {
  sessionId: string;
  model: ChatModel;
  /** Made once the page attached to the session (when it is connected). */
  follower?: SessionFollower;
  /** Events that arrived past the next expected seq: a gap (must stay 0). */
  gaps: number;
}

/**
 * The page's connections as the follower sees them: the one live now, and word of each
 * new one (once initialized and re-attached to the followed session). The page itself
 * reconnects while it is logged in, so a hold changes nothing.
 */
class PageConnections implements ClientSource {
  current: Rpc | undefined;
  private readonly listeners = new Set<(client: FollowedConnection) => Promise<void> | void>();

  onConnected(listener: (client: FollowedConnection) => Promise<void> | void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => void this.listeners.delete(listener) };
  }

  hold(): { dispose(): void } {
    return { dispose: () => undefined };
  }

  /** A new connection, initialized: followers resubscribe on it. */
  async announce(rpc: Rpc): Promise<void> {
    this.current = rpc;
    for (const listener of [...this.listeners]) await listener(rpc);
  }
}

const connections = new PageConnections();

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  rpc: undefined as Rpc | undefined,
  access: undefined as Access | undefined,
  daemonId: '',
  sessions: [] as SessionInfo[],
  followed: undefined as Followed | undefined,
  approvals: new Map<string, Approval>(),
  listTimer: undefined as number | undefined,
  renderQueued: false,
};

const canControl = () => state.access?.role === 'controller' || state.access?.role === 'owner';

function setConnection(kind: 'connecting' | 'connected' | 'reconnecting' | 'logged-out', text: string): void {
  const el = $('connection');
  el.dataset.state = kind;
  el.textContent = text;
}

function showError(text: string): void {
  const el = $('error');
  el.textContent = text;
  el.hidden = text === '';
}

// ---- login ----

/** Who this page is logged in as; undefined when it is not (401). Anything else (a daemon stopping or down) throws. */
async function me(): Promise<Access | undefined> {
  const answer = await fetch('/me', { credentials: 'same-origin' });
  if (answer.status === 401) return undefined;
  if (!answer.ok) throw new Error(`the daemon answered ${answer.status}`);
  return (await answer.json()) as Access;
}

function showLogin(message = ''): void {
  stopListing();
  state.rpc = undefined;
  connections.current = undefined;
  // Another token may log in next, which may not see this session.
  state.followed?.follower?.dispose();
  state.followed = undefined;
  setConnection('logged-out', 'not logged in');
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $<HTMLInputElement>('token').focus();
}

async function login(event: Event): Promise<void> {
  event.preventDefault();
  const input = $<HTMLInputElement>('token');
  const token = input.value.trim();
  input.value = '';
  const answer = await fetch('/login', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }) });
  if (!answer.ok) {
    const body = (await answer.json().catch(() => ({}))) as { error?: { message?: string } };
    return showLogin(body.error?.message ?? `login failed (${answer.status})`);
  }
  state.access = (await answer.json()) as Access;
  $('login').hidden = true;
  void connect(0);
}

async function logout(): Promise<void> {
  await fetch('/logout', { method: 'POST', credentials: 'same-origin' });
  state.rpc?.close();
  showLogin('logged out');
}

// ---- connection ----

async function connect(attempt: number): Promise<void> {
  setConnection(attempt === 0 ? 'connecting' : 'reconnecting', attempt === 0 ? 'connecting…' : `connection lost; reconnecting (attempt ${attempt})…`);
  let rpc: Rpc;
  try {
    rpc = await Rpc.open();
  } catch {
    // A refused upgrade is not visible to a page: /me says whether the login still holds
    // (a daemon that does not answer, or is stopping, is restarting: try again).
    const login = await me().then(
      (access) => (access ? 'valid' : 'ended'),
      () => 'unreachable',
    );
    if (login === 'ended') return showLogin('the login has ended (logged out, expired or revoked); log in again');
    await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 3000)));
    return connect(attempt + 1);
  }
  handle(rpc);
  try {
    const init = await rpc.request('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      clientInfo: { name: 'agentd-web' },
      capabilities: { permissionRequests: state.access?.role !== 'observer' },
    });
    state.access = init.access ?? state.access;
    state.daemonId = (await rpc.request('daemon/status', {})).daemonId;
  } catch (error) {
    rpc.close();
    showError(`initialize failed: ${(error as Error).message}`);
    return;
  }
  state.rpc = rpc;
  $('app').hidden = false;
  $('who').textContent = `${state.access?.role ?? '?'}${state.access?.tokenName ? ` · ${state.access.tokenName}` : ''}`;
  document.body.dataset.role = state.access?.role ?? '';
  setConnection('connected', `connected to ${state.daemonId}`);
  showError('');
  void rpc.closed.then(({ code, reason }) => {
    if (state.rpc !== rpc) return;
    state.rpc = undefined;
    connections.current = undefined;
    state.approvals.clear();
    render();
    if (code === 4001) return showLogin(`the daemon ended the connection: ${reason}`);
    void connect(1);
  });
  startListing();
  await refreshSessions();
  // Attached again first (to be asked its questions), then the follower resubscribes from where it was.
  if (state.followed) await attach(rpc, state.followed.sessionId);
  if (state.rpc === rpc) await connections.announce(rpc);
}

/** The daemon's messages for the page itself: questions, a stop (the follower takes events and deltas). */
function handle(rpc: Rpc): void {
  rpc.onNotification(DaemonStoppingNotification, ({ reason }) => showError(`the daemon is stopping (${reason}); waiting for it`));
  rpc.onRequest(PermissionRequest, (question, signal) =>
    new Promise<{ decision: Decision }>((resolve, reject) => {
      const done = () => {
        state.approvals.delete(question.toolUseId);
        queueRender();
      };
      state.approvals.set(question.toolUseId, {
        question,
        answer: (decision) => {
          done();
          resolve({ decision });
        },
      });
      // Answered elsewhere first: the question goes away here.
      signal.addEventListener('abort', () => {
        done();
        reject(new Error('withdrawn'));
      });
      queueRender();
    }),
  );
}

// ---- sessions ----

function startListing(): void {
  stopListing();
  state.listTimer = window.setInterval(() => void refreshSessions(), 2000);
}

function stopListing(): void {
  if (state.listTimer !== undefined) window.clearInterval(state.listTimer);
  state.listTimer = undefined;
}

async function refreshSessions(): Promise<void> {
  const rpc = state.rpc;
  if (!rpc) return;
  try {
    state.sessions = (await rpc.request('session/list', { limit: 200 })).sessions;
  } catch {
    return; // the connection is going; the reconnect lists again
  }
  render();
}

/** Attaches to the session on this connection: as controller when the token may, to be asked its questions. */
async function attach(rpc: Rpc, sessionId: string): Promise<void> {
  try {
    await rpc.request('session/attach', { sessionId, role: canControl() ? 'controller' : 'observer' });
  } catch (error) {
    // The connection going is not worth saying: the next one attaches again.
    if (error instanceof AgentdError) showError(`cannot follow ${sessionId}: ${error.message}`);
  }
}

/** Events the follower delivered: into the fold, and the list says so at once (not at its next refresh). */
function applied(followed: Followed, events: SessionEvent[]): void {
  if (events[0]!.seq > followed.model.nextSeq) followed.gaps++;
  followed.model.applyEvents(events);
  const listed = state.sessions.find((s) => s.sessionId === followed.sessionId);
  if (listed) {
    const { status } = followed.model.view();
    Object.assign(listed, { headSeq: followed.model.nextSeq, status });
    if (status === 'idle' || status === 'archived') delete listed.runningOn;
  }
  queueRender();
}

/** Follows a session from its start with the shared follower, on this connection and every next one. */
async function select(sessionId: string): Promise<void> {
  if (state.followed?.sessionId === sessionId) return;
  state.followed?.follower?.dispose();
  const followed: Followed = { sessionId, model: new ChatModel(sessionId), gaps: 0 };
  state.followed = followed;
  render();
  if (state.rpc) await attach(state.rpc, sessionId);
  if (state.followed !== followed) return;
  followed.follower = new SessionFollower(connections, sessionId, 0, {
    onEvents: (events) => applied(followed, events),
    onDelta: (delta) => {
      followed.model.applyDelta(delta);
      queueRender();
    },
    onEnded: (error) => showError(`cannot follow ${sessionId}: ${error.message}`),
  });
}

async function prompt(event: Event): Promise<void> {
  event.preventDefault();
  const input = $<HTMLTextAreaElement>('prompt-text');
  const text = input.value.trim();
  const followed = state.followed;
  if (!text || !followed || !state.rpc) return;
  try {
    // While a turn runs, what is sent joins it (its next model call); otherwise it is a new turn.
    if (isRunning(followed.model.view().status)) await state.rpc.request('session/steer', { sessionId: followed.sessionId, content: text });
    else await state.rpc.request('session/prompt', { sessionId: followed.sessionId, content: text });
    input.value = '';
    showError('');
  } catch (error) {
    showError(error instanceof AgentdError ? `${error.message} (${error.code})` : String(error));
  }
}

function isRunning(status: string): boolean {
  return status === 'running' || status === 'waiting';
}

async function interrupt(): Promise<void> {
  const followed = state.followed;
  if (!followed || !state.rpc) return;
  await state.rpc.request('session/interrupt', { sessionId: followed.sessionId }).catch((error: Error) => showError(error.message));
}

// ---- rendering ----

function queueRender(): void {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

function renderSessions(): void {
  const waiting = new Set([...state.approvals.values()].map((a) => a.question.sessionId));
  $('sessions').replaceChildren(
    ...state.sessions.map((s) =>
      h(
        'li',
        { class: `session ${s.status}${state.followed?.sessionId === s.sessionId ? ' selected' : ''}`, attrs: { 'data-session-id': s.sessionId }, on: { click: () => void select(s.sessionId) } },
        h('div', { class: 'title' }, s.parent ? '↳ ' : '', s.title || s.sessionId, waiting.has(s.sessionId) ? h('span', { class: 'asks-badge' }, 'asks') : undefined),
        h('div', { class: 'meta' }, h('span', { class: `status ${s.status}` }, s.status), h('span', { class: 'runs-on' }, s.runningOn ? `on ${s.runningOn}` : 'not running'), h('span', {}, `${s.headSeq} events`)),
      ),
    ),
  );
}

/** A sub-agent links to its parent, a session to the sub-agents it started. */
function renderFamily(parent: string | undefined, children: string[]): void {
  const titled = (sessionId: string) => state.sessions.find((s) => s.sessionId === sessionId)?.title || sessionId;
  const link = (sessionId: string) => h('a', { attrs: { 'data-session-id': sessionId }, on: { click: () => void select(sessionId) } }, titled(sessionId));
  const family = $('session-family');
  family.hidden = !parent && children.length === 0;
  family.replaceChildren(
    ...(parent ? ['sub-agent of ', link(parent)] : []),
    ...(children.length > 0 ? [parent ? ' · ' : '', 'sub-agents: ', ...children.map(link)] : []),
  );
}

function render(): void {
  renderSessions();
  const followed = state.followed;
  const main = $('session');
  const others = [...state.approvals.values()].filter((a) => a.question.sessionId !== followed?.sessionId);
  $('other-approvals').replaceChildren(...others.map((a) => approvalCard(a, a.question.sessionTitle ?? a.question.sessionId)));
  $('pick').hidden = followed !== undefined || state.sessions.length === 0;
  if (!followed) {
    main.hidden = true;
    return;
  }
  main.hidden = false;
  const view = followed.model.view();
  Object.assign(main.dataset, { sessionId: followed.sessionId, next: String(view.next), gaps: String(followed.gaps), status: view.status });
  $('session-title').textContent = view.title ?? followed.sessionId;
  $('session-status').textContent = view.status;
  renderFamily(view.parent?.sessionId, view.children);
  $('conversation').replaceChildren(...renderChat(view, state.approvals));
  $('prompt-form').hidden = !canControl() || view.status === 'archived';
  $('read-only').hidden = canControl();
  $('interrupt').hidden = !canControl();
  const running = isRunning(view.status);
  $<HTMLButtonElement>('interrupt').disabled = !running;
  $('send').textContent = running ? 'Steer' : 'Send';
  $('send').title = running ? 'Adds this to the running turn: its next model call reads it' : 'Starts a turn';
}

// ---- start ----

function start(): void {
  $('login-form').addEventListener('submit', (event) => void login(event));
  $('prompt-form').addEventListener('submit', (event) => void prompt(event));
  $('interrupt').addEventListener('click', () => void interrupt());
  $('logout').addEventListener('click', () => void logout());
  void boot(0);
}

/** Logged in already (the cookie holds): connect; not: the login form; the daemon away: try again. */
async function boot(attempt: number): Promise<void> {
  let access: Access | undefined;
  try {
    access = await me();
  } catch {
    setConnection('reconnecting', 'cannot reach the daemon; trying again…');
    await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 5000)));
    return boot(attempt + 1);
  }
  if (!access) return showLogin();
  state.access = access;
  return connect(0);
}

start();
