/**
 * The permission broker as a unit, over in-memory linked JSON-RPC pairs: who is asked,
 * which answer wins, what is cancelled, and what goes to other daemons.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type CancellationToken, type MessageConnection } from 'vscode-jsonrpc/node';
import { AgentdError, ErrorCode, type PermissionDecision, type PermissionQuestion } from '../protocol/index.js';
import type { Logger } from '../daemon/logger.js';
import { MemorySessionLog } from '../daemon/log/memory-log.js';
import { openQuestions, PermissionBroker, type PermissionRelay } from '../daemon/permissions.js';
import { Peer } from '../daemon/rpc/peer.js';
import { until } from './support/until.js';

const quiet: Logger = { log: () => undefined };

interface TestClient {
  peer: Peer;
  /** Questions this client was asked, with how each ended for it. */
  asked: Array<{ question: PermissionQuestion; cancelled: () => boolean }>;
  answer(toolUseId: string, decision: PermissionDecision): void;
  close(): void;
}

/** A daemon-side Peer linked in memory to a client connection that answers when the test says. */
function client(id: number, name: string, options: { role?: 'controller' | 'observer'; answers?: boolean } = {}): TestClient {
  const toClient = new PassThrough();
  const toDaemon = new PassThrough();
  const daemonSide = createMessageConnection(new StreamMessageReader(toDaemon), new StreamMessageWriter(toClient));
  const clientSide: MessageConnection = createMessageConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toDaemon));
  const asked: TestClient['asked'] = [];
  const pending = new Map<string, (decision: PermissionDecision) => void>();
  clientSide.onRequest('permission/request', (question: PermissionQuestion, token: CancellationToken) => {
    asked.push({ question, cancelled: () => token.isCancellationRequested });
    return new Promise((resolve) => pending.set(question.toolUseId, (decision) => resolve({ decision })));
  });
  daemonSide.listen();
  clientSide.listen();
  const peer = new Peer(id, daemonSide);
  peer.state = 'ready';
  peer.clientName = name;
  peer.capabilities = { permissionRequests: options.answers ?? true };
  if (options.role) peer.roles.set('s_question0001', options.role);
  return {
    peer,
    asked,
    answer: (toolUseId, decision) => pending.get(toolUseId)!(decision),
    close: () => {
      peer.closed = true;
      daemonSide.dispose();
      clientSide.dispose();
    },
  };
}

const question = (toolUseId: string, sessionId = 's_question0001'): PermissionQuestion => ({ sessionId, sessionTitle: 'a title', toolUseId, tool: 'bash', input: { command: 'ls' } });
const rejectsWith = (code: number) => (error: unknown) => error instanceof AgentdError && error.code === code;

function broker(clients: TestClient[]): PermissionBroker {
  return new PermissionBroker(() => clients.map((c) => c.peer), quiet);
}

describe('permission broker', () => {
  it('asks every controller that declared permissionRequests, takes the first answer and cancels the rest', async () => {
    const first = client(1, 'first', { role: 'controller' });
    const second = client(2, 'second', { role: 'controller' });
    const observer = client(3, 'observer', { role: 'observer' });
    const bystander = client(4, 'bystander');
    const mute = client(5, 'mute', { role: 'controller', answers: false });
    const all = [first, second, observer, bystander, mute];
    try {
      const answered = broker(all).ask(question('u1'), new AbortController().signal);
      await until(() => first.asked.length === 1 && second.asked.length === 1, 'both controllers asked');
      assert.deepEqual(first.asked[0]!.question, question('u1'));
      second.answer('u1', 'deny');
      assert.deepEqual(await answered, { decision: 'deny', by: 'second#2' });
      await until(() => first.asked[0]!.cancelled(), "the other controller's request cancelled");
      first.answer('u1', 'allow'); // too late: ignored
      assert.deepEqual([observer, bystander, mute].map((c) => c.asked.length), [0, 0, 0]);
    } finally {
      for (const c of all) c.close();
    }
  });

  it('asks a connection that becomes a controller later, and answers permission/answer only from controllers of the session', async () => {
    const late = client(1, 'late');
    const other = client(2, 'other');
    other.peer.roles.set('s_elsewhere001', 'controller');
    const b = broker([late, other]);
    try {
      const answered = b.ask(question('u2'), new AbortController().signal);
      assert.equal(b.hasOpen('s_question0001'), true);
      assert.throws(() => b.answer(other.peer, 's_question0001', 'u2', 'allow'), rejectsWith(ErrorCode.NotController));
      assert.throws(() => b.answer(other.peer, 's_elsewhere001', 'u2', 'allow'), rejectsWith(ErrorCode.QuestionNotOpen), "another session's question");
      late.peer.roles.set('s_question0001', 'controller');
      b.offer(late.peer, 's_question0001');
      await until(() => late.asked.length === 1, 'the new controller asked');
      b.answer(late.peer, 's_question0001', 'u2', 'allow_always');
      assert.deepEqual(await answered, { decision: 'allow_always', by: 'late#1' });
      assert.equal(b.pending, 0);
      assert.throws(() => b.answer(late.peer, 's_question0001', 'u2', 'allow'), rejectsWith(ErrorCode.QuestionNotOpen), 'answered already');
      await until(() => late.asked[0]!.cancelled(), 'the request answered by permission/answer is cancelled');
    } finally {
      late.close();
      other.close();
    }
  });

  it('ignores the answer of a connection that stopped being a controller while it was asked', async () => {
    const fickle = client(1, 'fickle', { role: 'controller' });
    const b = broker([fickle]);
    try {
      const withdrawn = new AbortController();
      const answered = b.ask(question('u3'), withdrawn.signal);
      await until(() => fickle.asked.length === 1, 'asked');
      fickle.peer.roles.set('s_question0001', 'observer');
      fickle.answer('u3', 'allow');
      // A later answer on the same connection: once it is in, the one before it was handled.
      fickle.peer.roles.set('s_later000001', 'controller');
      const later = b.ask(question('u3b', 's_later000001'), new AbortController().signal);
      await until(() => fickle.asked.length === 2, 'asked the later question');
      fickle.answer('u3b', 'deny');
      await later;
      assert.equal(b.pending, 1, 'u3 still open');
      withdrawn.abort();
      await assert.rejects(answered, /withdrawn/);
      assert.equal(b.pending, 0);
    } finally {
      fickle.close();
    }
  });

  it('relays to other daemons: our questions out, their answers in, their questions to our controllers', async () => {
    const ours = client(1, 'ours', { role: 'controller' });
    const relayed: string[] = [];
    const relay: PermissionRelay = {
      asked: (q) => relayed.push(`asked ${q.toolUseId}`),
      closed: (q) => relayed.push(`closed ${q.toolUseId}`),
      answered: (q, decision, by) => relayed.push(`answered ${q.toolUseId} ${decision} ${by}`),
    };
    const b = broker([ours]);
    b.relay = relay;
    try {
      // Our harness asks; a client of another daemon answers first.
      const answered = b.ask(question('u4'), new AbortController().signal);
      b.answerFromRemote('u4', 'deny', 'far#9');
      assert.deepEqual(await answered, { decision: 'deny', by: 'far#9' });
      // Another daemon's harness asks; our controller answers, and the answer goes back.
      b.askRemote(question('u5'));
      b.askRemote(question('u5')); // heard twice, asked once
      await until(() => ours.asked.some((a) => a.question.toolUseId === 'u5'), 'our controller asked the remote question');
      ours.answer('u5', 'allow');
      await until(() => b.pending === 0, 'the remote question answered');
      // Another daemon's question answered there: we stop asking.
      b.askRemote(question('u6'));
      await until(() => ours.asked.some((a) => a.question.toolUseId === 'u6'), 'asked u6');
      b.closeRemote('u6');
      await until(() => ours.asked.find((a) => a.question.toolUseId === 'u6')!.cancelled(), 'u6 withdrawn here');
      assert.deepEqual(relayed, ['asked u4', 'closed u4', 'answered u5 allow ours#1']);
      assert.equal(ours.asked.filter((a) => a.question.toolUseId === 'u5').length, 1);
    } finally {
      ours.close();
    }
  });
});

describe('open questions in the log', () => {
  it('are the permission.requested whose call has neither an answer nor a result, other events passed over', async () => {
    const log = new MemorySessionLog();
    const sessionId = 's_question0001';
    const asked = (toolUseId: string) => ({ type: 'permission.requested', data: { turnId: 't1', toolUseId, tool: 'bash', input: { command: toolUseId } } });
    await log.create({ sessionId, createdAt: 1, updatedAt: 1, title: 'a title' }, [
      asked('u1'),
      asked('u2'),
      asked('u3'),
      { type: 'permission.resolved', data: { turnId: 't1', toolUseId: 'u1', decision: 'allow', by: 'x#1' } },
      { type: 'tool.result', data: { turnId: 't1', toolUseId: 'u3', content: [], isError: true, errorKind: 'interrupted', durationMs: 0 } },
      { type: 'permission.requested', data: { toolUseId: 'broken' } },
      { type: 'future.event', data: { toolUseId: 'u2' } },
    ]);
    assert.deepEqual(await openQuestions(log, sessionId), [{ sessionId, sessionTitle: 'a title', toolUseId: 'u2', tool: 'bash', input: { command: 'u2' } }]);
    await log.close();
  });
});
