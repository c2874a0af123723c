/**
 * LSP framing as a unit: the gated reader over a stream transport on an in-memory
 * stream, and the writer's frames read back. (The WebSocket transport shares the reader
 * and writer; the corpus replayed through `agentd stdio --remote` covers it end to end.)
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { Message } from 'vscode-jsonrpc/node';
import type { Inbound } from '../daemon/rpc/envelope.js';
import { GatedMessageReader, TransportMessageWriter, type FrameProblem, type InboundGate } from '../daemon/rpc/framing.js';
import { streamTransport } from '../daemon/rpc/transport.js';

const frame = (body: string | Buffer) => {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(`Content-Length: ${bytes.length}\r\n\r\n`), bytes]);
};
const request = (id: number, method = 'session/get') => JSON.stringify({ jsonrpc: '2.0', id, method, params: {} });

/** A reader on an in-memory stream, recording what it delivers, what the gate saw and the problems it reports. */
function reader(maxFrameBytes = 1024, gate: InboundGate = () => 'deliver') {
  const input = new PassThrough();
  const delivered: Message[] = [];
  const seen: Inbound[] = [];
  const problems: FrameProblem[] = [];
  const r = new GatedMessageReader(streamTransport(input as unknown as Socket, maxFrameBytes), (p) => problems.push(p), (inbound, bytes) => (seen.push(inbound), gate(inbound, bytes)));
  r.listen((message) => delivered.push(message));
  const ids = () => delivered.map((m) => ('id' in m ? m.id : undefined));
  return { input, reader: r, delivered, seen, problems, ids };
}

describe('framed message reader', () => {
  it('reads a frame however the bytes are split, and several frames from one chunk', () => {
    const r = reader();
    const bytes = Buffer.concat([frame(request(1)), frame(request(2)), frame(request(3))]);
    for (let i = 0; i < 40; i++) r.input.write(bytes.subarray(i, i + 1));
    r.input.write(bytes.subarray(40));
    assert.deepEqual(r.ids(), [1, 2, 3]);
    assert.deepEqual(r.problems, []);
  });

  it('reports malformed JSON and bytes that are not UTF-8 as parse errors, and reads on', () => {
    const r = reader();
    r.input.write(Buffer.concat([frame('{"jsonrpc": "2.0", "id": 1,'), frame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), frame(request(2))]));
    assert.deepEqual(r.problems.map((p) => [p.kind, p.fatal]), [['parse', false], ['parse', false]]);
    assert.deepEqual(r.ids(), [2]);
  });

  it('refuses a frame larger than the limit from its header, before its body arrives, and stops', () => {
    const r = reader(100);
    r.input.write('Content-Length: 101\r\n\r\n');
    assert.deepEqual(r.problems.map((p) => [p.kind, p.fatal]), [['too_large', true]]);
    r.input.write(frame(request(1)));
    assert.deepEqual(r.delivered, [], 'nothing is read after a fatal problem');
  });

  for (const [name, header] of [
    ['a missing Content-Length', 'Content-Type: application/json\r\n\r\n'],
    ['two Content-Lengths', 'Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}'],
    ['a Content-Length that is not a number', 'Content-Length: -1\r\n\r\n'],
    ['a Content-Length of 16 digits', 'Content-Length: 1234567890123456\r\n\r\n'],
  ] as const) {
    it(`ends the stream on ${name}`, () => {
      const r = reader();
      r.input.write(header);
      assert.deepEqual(r.problems.map((p) => [p.kind, p.fatal]), [['header', true]]);
    });
  }

  it('ends the stream on a header block that never ends', () => {
    const r = reader();
    r.input.write(`X-Padding: ${'x'.repeat(9000)}`);
    assert.deepEqual(r.problems.map((p) => p.kind), ['header']);
  });

  it('accepts header names in any case and other headers beside Content-Length', () => {
    const r = reader();
    const body = request(7);
    r.input.write(`content-length: ${Buffer.byteLength(body)}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n${body}`);
    assert.deepEqual(r.ids(), [7]);
  });

  it('hands the gate every envelope; only requests and responses it lets through reach the connection', () => {
    const r = reader(1024, (inbound) => (inbound.kind === 'request' && inbound.id === 2 ? 'drop' : 'deliver'));
    r.input.write(
      Buffer.concat([
        frame(request(1)),
        frame(request(2)),
        frame('[]'),
        frame(JSON.stringify({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 1 } })),
        frame(JSON.stringify({ jsonrpc: '2.0', id: 9, result: {} })),
      ]),
    );
    assert.deepEqual(r.seen.map((i) => i.kind), ['request', 'request', 'invalid', 'cancel', 'response']);
    assert.deepEqual(r.ids(), [1, 9]);
  });

  it('holds a message the gate holds, reads nothing behind it, and carries on in order on resume', () => {
    let saturated = true;
    const r = reader(1024, (inbound) => (inbound.kind === 'request' && inbound.id === 2 && saturated ? 'hold' : 'deliver'));
    r.input.write(Buffer.concat([frame(request(1)), frame(request(2)), frame(request(3))]));
    assert.deepEqual(r.ids(), [1]);
    assert.equal(r.input.isPaused(), true, 'the stream is paused: the peer backs up, not our memory');
    r.reader.resume();
    assert.deepEqual(r.ids(), [1], 'still held while the gate says so');
    saturated = false;
    r.reader.resume();
    assert.deepEqual(r.ids(), [1, 2, 3]);
  });
});

describe('framed message writer', () => {
  it('writes frames the reader reads back, with UTF-8 lengths, and tells of each message written', async () => {
    const pipe = new PassThrough();
    const written: Message[] = [];
    const writer = new TransportMessageWriter(streamTransport(pipe as unknown as Socket), (m) => written.push(m));
    const r = reader(1 << 20);
    pipe.pipe(r.input);
    const messages: Message[] = [
      { jsonrpc: '2.0', id: 1, result: { text: 'naïve — ünïcödé 🎉' } } as Message,
      { jsonrpc: '2.0', method: 'session/event', params: { n: 1 } } as Message,
    ];
    for (const message of messages) await writer.write(message);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(written, messages);
    assert.deepEqual(r.delivered, [messages[0]], 'the reader delivers responses; notifications to the daemon are judged apart');
    assert.deepEqual(r.seen.map((i) => i.kind), ['response', 'ignored']);
  });

  it('refuses a message it cannot serialise', async () => {
    const writer = new TransportMessageWriter(streamTransport(new PassThrough() as unknown as Socket));
    const cyclic: Record<string, unknown> = { jsonrpc: '2.0', id: 1 };
    cyclic['result'] = cyclic;
    await assert.rejects(writer.write(cyclic as unknown as Message), /circular/);
  });
});
