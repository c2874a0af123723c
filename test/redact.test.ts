/** The redactor as a unit: what it replaces, in which forms, and what it leaves alone. (Attacks through the proxy: security/redaction.test.ts.) */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { Redactor } from '../daemon/vault/redact.js';

const SECRET = 'sk-live-4f9a2c7e1b';
const redactor = new Redactor([
  { name: 'API_KEY', value: SECRET },
  { name: 'SHORT', value: 'abc' },
]);

describe('redactor', () => {
  it('replaces a secret in text with its name, and leaves the rest', () => {
    assert.equal(redactor.text(`token=${SECRET}; ok`), 'token=[REDACTED:API_KEY]; ok');
    assert.equal(redactor.text('nothing to see'), 'nothing to see');
  });

  it('finds the secret however an upstream may have encoded it', () => {
    const forms = {
      json: JSON.stringify({ t: SECRET }),
      hex: Buffer.from(SECRET).toString('hex'),
      HEX: Buffer.from(SECRET).toString('hex').toUpperCase(),
      percent: SECRET.split('').map((c) => `%${c.charCodeAt(0).toString(16)}`).join(''),
      unicode: SECRET.split('').map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
      base64: Buffer.from(`user:${SECRET}`).toString('base64'),
      base64url: Buffer.from(`xx${SECRET}`).toString('base64url'),
      folded: `${SECRET.slice(0, 7)}\n   ${SECRET.slice(7)}`,
    };
    for (const [name, text] of Object.entries(forms)) {
      const out = redactor.text(`before ${text} after`);
      assert.match(out, /\[REDACTED:API_KEY\]/, name);
      assert.ok(out.startsWith('before ') && out.endsWith(' after'), `${name}: only the secret goes (${out})`);
    }
  });

  it('redacts every string inside a value, keys and other types untouched', () => {
    const input = { [SECRET.slice(0, 3)]: [`a ${SECRET}`, 7, true, null, { deep: SECRET }], n: 1.5 };
    assert.deepEqual(redactor.value(input), { 'sk-': ['a [REDACTED:API_KEY]', 7, true, null, { deep: '[REDACTED:API_KEY]' }], n: 1.5 });
    assert.deepEqual(input.n, 1.5, 'the input is not changed');
    assert.equal((input['sk-'] as unknown[])[0], `a ${SECRET}`);
  });

  it('says which values are too short to redact, and does not try', () => {
    assert.deepEqual(redactor.tooShort, ['SHORT']);
    assert.equal(redactor.text('abc abc'), 'abc abc');
  });

  it('passes everything through unchanged when it has nothing to look for', () => {
    const empty = new Redactor([{ name: 'TINY', value: 'x' }]);
    assert.equal(empty.empty, true);
    const value = { a: ['b'] };
    assert.equal(empty.value(value), value);
    assert.equal(empty.text(SECRET), SECRET);
  });

  it('redacts a stream cut inside the secret, and leaves other bytes as they were', async () => {
    const bytes = Buffer.concat([Buffer.from([0x00, 0xff, 0x80]), Buffer.from(`x${SECRET}y`), Buffer.from([0xfe])]);
    const chunks = [bytes.subarray(0, 6), bytes.subarray(6, 11), bytes.subarray(11)];
    const out = await buffer(Readable.from(chunks).pipe(redactor.stream()));
    assert.deepEqual(out, Buffer.concat([Buffer.from([0x00, 0xff, 0x80]), Buffer.from('x[REDACTED:API_KEY]y'), Buffer.from([0xfe])]));
  });
});
