/**
 * The cluster bus on its own: what one daemon sends, another receives whole and in order,
 * each message inside NOTIFY's 8000-byte payload limit, whatever the text holds.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ClusterBus } from '../daemon/cluster/bus.js';
import { fileLogger } from '../daemon/logger.js';
import { tempDir } from './support/temp.js';

const NOTIFY_PAYLOAD_MAX = 8000;

describe('cluster bus', () => {
  it('cuts a long delta into payloads NOTIFY accepts, and the other side gets it whole, in order', async () => {
    const logger = fileLogger(join(tempDir('agentd-bus-'), 'daemon.log'));
    const payloads: string[] = [];
    const receiver = new ClusterBus('daemon-b', async () => undefined, logger);
    const sender = new ClusterBus('daemon-a', async (payload) => void payloads.push(payload), logger);
    const got: string[] = [];
    receiver.on('delta', (m) => got.push(m.text));
    // The receiver follows the session, so the sender sends its deltas.
    sender.receive(JSON.stringify({ kind: 'follow', from: 'daemon-b', sessionIds: ['s_1'] }));
    // Control characters are the costliest in JSON (6 bytes each), then 3-byte UTF-8.
    const text = '\u0001'.repeat(5000) + '✓'.repeat(5000) + 'plain';
    sender.sendDelta('s_1', 't_1', 'text', 0, text.slice(0, 7000));
    sender.sendDelta('s_1', 't_1', 'text', 0, text.slice(7000));
    await sender.flush();
    assert.ok(payloads.length > 1);
    for (const payload of payloads) assert.ok(Buffer.byteLength(payload) < NOTIFY_PAYLOAD_MAX, `payload of ${Buffer.byteLength(payload)} bytes`);
    for (const payload of payloads) receiver.receive(payload);
    assert.equal(got.join(''), text);
  });

  it('sends no delta for a session nobody on another daemon follows, and ignores malformed and own messages', async () => {
    const logger = fileLogger(join(tempDir('agentd-bus-'), 'daemon.log'));
    const payloads: string[] = [];
    const bus = new ClusterBus('daemon-a', async (payload) => void payloads.push(payload), logger);
    const interrupts: string[] = [];
    bus.on('interrupt', (m) => interrupts.push(m.sessionId));
    bus.sendDelta('s_1', 't_1', 'text', 0, 'nobody watches');
    await bus.flush();
    assert.deepEqual(payloads, []);
    bus.receive('not json');
    bus.receive(JSON.stringify({ kind: 'interrupt', from: 'daemon-b' }));
    bus.receive(JSON.stringify({ kind: 'interrupt', sessionId: 's_1', from: 'daemon-a' }));
    bus.receive(JSON.stringify({ kind: 'interrupt', sessionId: 's_2', from: 'daemon-b' }));
    assert.deepEqual(interrupts, ['s_2']);
  });
});
