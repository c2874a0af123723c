import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic, {
  APIError, AuthenticationError, BadRequestError, InternalServerError, OverloadedError, RateLimitError,
} from '@anthropic-ai/sdk';
import { reply, startModelEmulator, type ModelEmulator, type ModelEmulatorOptions } from '../clients/cli/demo/model-emulator.js';

const KEY = 'sk-test-emulator';
const MODEL = 'claude-test-model';

async function withEmulator(
  fn: (emu: ModelEmulator, client: Anthropic) => Promise<void>,
  opts: ModelEmulatorOptions = { apiKey: KEY },
): Promise<void> {
  const emu = await startModelEmulator(opts);
  const client = new Anthropic({ apiKey: KEY, baseURL: emu.url, maxRetries: 0 });
  try {
    await fn(emu, client);
  } finally {
    await emu.close();
  }
}

const user = (text: string) => ({ role: 'user' as const, content: text });
const base = { model: MODEL, max_tokens: 1024 };

test('streaming text: text events, finalMessage, usage, recorded request', () =>
  withEmulator(async (emu, client) => {
    emu.script([reply.text('Hello there, streaming world!', { chunks: ['Hello ', 'there, ', 'streaming ', 'world!'] })]);
    const stream = client.messages.stream({ ...base, messages: [user('hi')] });
    const pieces: string[] = [];
    stream.on('text', (t) => pieces.push(t));
    const msg = await stream.finalMessage();
    assert.deepEqual(pieces, ['Hello ', 'there, ', 'streaming ', 'world!']);
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0]!.type === 'text' && msg.content[0]!.text, 'Hello there, streaming world!');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.model, MODEL);
    assert.ok(msg.usage.input_tokens > 0);
    assert.ok(msg.usage.output_tokens > 0);
    assert.equal(msg.usage.cache_read_input_tokens, 0);
    assert.equal(msg.usage.cache_creation_input_tokens, 0);
    assert.equal(emu.requests.length, 1);
    const r = emu.requests[0]!;
    assert.equal(r.method, 'POST');
    assert.equal(r.path, '/v1/messages');
    assert.equal(r.body.stream, true);
    assert.deepEqual(r.body.messages, [user('hi')]);
    assert.equal(r.status, 200);
    assert.ok(r.headers['authorization'] || r.headers['x-api-key']);
    assert.equal(emu.pending, 0);
    await emu.waitFor(() => emu.inFlight === 0 && emu.openStreams === 0);
  }));

test('raw stream has ping, message_delta with stop_reason and usage, and ordered events', () =>
  withEmulator(async (emu, client) => {
    emu.enqueue(reply.text('abc def'));
    const stream = await client.messages.create({ ...base, messages: [user('hi')], stream: true });
    const types: string[] = [];
    let delta: any;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'message_delta') delta = ev;
    }
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'));
    assert.equal(delta.delta.stop_reason, 'end_turn');
    for (const k of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens']) {
      assert.equal(typeof delta.usage[k], 'number', k);
    }
    // ping is filtered by the SDK; check the wire directly.
    const res = await fetch(`${emu.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ ...base, messages: [user('hi')], stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text();
    assert.match(text, /event: ping\n/);
    assert.match(text, /event: message_delta\n/);
  }));

test('tool_use: input_json_delta chunks reassembled by the SDK', () =>
  withEmulator(async (emu, client) => {
    const input = { path: '/tmp/some file.txt', lines: [1, 2, 3], opts: { recursive: true, note: 'é "quoted"' } };
    emu.enqueue(reply.toolUse([
      { name: 'read_file', input },
      { id: 'toolu_fixed', name: 'list', input: {} },
    ], { text: 'Let me look.', jsonChunks: 5 }));
    const stream = client.messages.stream({
      ...base,
      messages: [user('read it')],
      tools: [{ name: 'read_file', description: 'read', input_schema: { type: 'object' } },
        { name: 'list', description: 'list', input_schema: { type: 'object' } }],
    });
    const partials: string[] = [];
    stream.on('inputJson', (p) => partials.push(p));
    const msg = await stream.finalMessage();
    assert.equal(msg.stop_reason, 'tool_use');
    assert.equal(msg.content.length, 3);
    const [t, a, b] = msg.content as any[];
    assert.equal(t.type, 'text');
    assert.equal(t.text, 'Let me look.');
    assert.equal(a.type, 'tool_use');
    assert.match(a.id, /^toolu_/);
    assert.equal(a.name, 'read_file');
    assert.deepEqual(a.input, input);
    assert.equal(b.id, 'toolu_fixed');
    assert.deepEqual(b.input, {});
    assert.ok(partials.filter((p) => p !== '').length > 3, 'input JSON arrives in several chunks');
  }));

test('non-streaming create returns a whole message', () =>
  withEmulator(async (emu, client) => {
    emu.enqueue(reply.text('plain answer'), reply.toolUse({ name: 'bash', input: { cmd: 'ls' } }));
    const m1 = await client.messages.create({ ...base, messages: [user('q')] });
    assert.equal(m1.type, 'message');
    assert.equal(m1.role, 'assistant');
    assert.deepEqual(m1.content.map((c) => c.type === 'text' && c.text), ['plain answer']);
    assert.equal(m1.stop_reason, 'end_turn');
    assert.ok(m1.usage.input_tokens > 0);
    const m2 = await client.messages.create({ ...base, messages: [user('q')] });
    assert.equal(m2.stop_reason, 'tool_use');
    assert.deepEqual((m2.content[0] as any).input, { cmd: 'ls' });
    assert.equal(emu.requests[0]!.body.stream, undefined);
  }));

test('429 with retry-after is a RateLimitError carrying the header; queue moves on', () =>
  withEmulator(async (emu, client) => {
    emu.script([reply.rateLimited(7), reply.text('after the limit')]);
    const err = await client.messages.create({ ...base, messages: [user('q')] }).then(() => null, (e) => e);
    assert.ok(err instanceof RateLimitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.headers?.get('retry-after'), '7');
    assert.equal((err.error as any).error.type, 'rate_limit_error');
    const ok = await client.messages.create({ ...base, messages: [user('q')] });
    assert.equal((ok.content[0] as any).text, 'after the limit');
  }));

test('529 overloaded and 500 errors have the API error body shape', () =>
  withEmulator(async (emu, client) => {
    emu.script([reply.overloaded(), reply.serverError(), reply.error(529, { message: 'busy' })]);
    const e1 = await client.messages.create({ ...base, messages: [user('q')] }).then(() => null, (e) => e);
    assert.ok(e1 instanceof OverloadedError, String(e1));
    assert.equal(e1.status, 529);
    assert.deepEqual({ ...(e1.error as any), request_id: undefined },
      { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: undefined });
    const e2 = await client.messages.create({ ...base, messages: [user('q')] }).then(() => null, (e) => e);
    assert.ok(e2 instanceof InternalServerError && e2.status === 500, String(e2));
    assert.equal((e2.error as any).error.type, 'api_error');
    const e3 = await client.messages.stream({ ...base, messages: [user('q')] }).finalMessage().then(() => null, (e) => e);
    assert.ok(e3 instanceof APIError && e3.status === 529, String(e3));
    assert.equal((e3.error as any).error.message, 'busy');
  }));

test('mid-stream disconnect surfaces as an error', () =>
  withEmulator(async (emu, client) => {
    emu.enqueue(reply.disconnect({ afterEvents: 4, text: 'this will be cut off somewhere' }));
    const stream = client.messages.stream({ ...base, messages: [user('q')] });
    const pieces: string[] = [];
    stream.on('text', (t) => pieces.push(t));
    await assert.rejects(stream.finalMessage());
    assert.ok(pieces.length >= 1, 'some text arrived before the cut');
    await emu.waitFor(() => emu.inFlight === 0 && emu.openStreams === 0);
    // The emulator keeps serving afterwards.
    const m = await client.messages.create({ ...base, messages: [user('again')] });
    assert.equal((m.content[0] as any).text, 'echo: again');
  }));

test('stream_error sends an SSE error event the SDK throws', () =>
  withEmulator(async (emu, client) => {
    emu.enqueue(reply.streamError({ afterEvents: 3 }));
    const err = await client.messages.stream({ ...base, messages: [user('q')] }).finalMessage().then(() => null, (e) => e);
    assert.ok(err instanceof APIError, String(err));
    assert.equal((err.error as any).error.type, 'overloaded_error');
  }));

test('auth: wrong key is an AuthenticationError; x-api-key and Bearer both accepted', () =>
  withEmulator(async (emu) => {
    const bad = new Anthropic({ apiKey: 'sk-wrong', baseURL: emu.url, maxRetries: 0 });
    const err = await bad.messages.create({ ...base, messages: [user('q')] }).then(() => null, (e) => e);
    assert.ok(err instanceof AuthenticationError, String(err));
    assert.equal((err.error as any).error.type, 'authentication_error');
    const post = (headers: Record<string, string>) => fetch(`${emu.url}/v1/messages`, {
      method: 'POST',
      headers: { 'anthropic-version': '2023-06-01', 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ ...base, messages: [user('q')] }),
    });
    assert.equal((await post({ 'x-api-key': KEY })).status, 200);
    assert.equal((await post({ authorization: `Bearer ${KEY}` })).status, 200);
    const none = await post({});
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as any).error.type, 'authentication_error');
    assert.equal((await post({ 'x-api-key': 'nope' })).status, 401);
  }));

test('orphan tool_use is a 400 invalid_request_error and does not consume the script', () =>
  withEmulator(async (emu, client) => {
    emu.script([reply.text('scripted')]);
    const messages: Anthropic.MessageParam[] = [
      user('do it'),
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_orphan', name: 'bash', input: {} }] },
      user('never mind'),
    ];
    const err = await client.messages.create({ ...base, messages }).then(() => null, (e) => e);
    assert.ok(err instanceof BadRequestError, String(err));
    assert.equal((err.error as any).error.type, 'invalid_request_error');
    assert.match((err.error as any).error.message, /toolu_orphan/);
    assert.equal(emu.pending, 1);
    assert.equal(emu.requests[0]!.status, 400);
    // Also when the assistant tool_use is the last message.
    const err2 = await client.messages.create({ ...base, messages: messages.slice(0, 2) }).then(() => null, (e) => e);
    assert.ok(err2 instanceof BadRequestError, String(err2));
  }));

test('other validation: roles, fields, cache_control limit, unknown tool_result', () =>
  withEmulator(async (emu, client) => {
    const bad = async (body: any) => {
      const e = await client.messages.create(body).then(() => null, (x) => x);
      assert.ok(e instanceof BadRequestError, `${JSON.stringify(body)} -> ${String(e)}`);
    };
    await bad({ ...base, messages: [] });
    await bad({ ...base, messages: [{ role: 'assistant', content: 'x' }] });
    await bad({ ...base, messages: [user('a'), user('b')] });
    await bad({ model: MODEL, messages: [user('a')] });
    await bad({ max_tokens: 10, messages: [user('a')] });
    await bad({ ...base, messages: [user('')] });
    await bad({ ...base, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_x', content: 'r' }] }] });
    const cc = { type: 'ephemeral' as const };
    await bad({
      ...base,
      system: [1, 2, 3].map((i) => ({ type: 'text', text: `s${i}`, cache_control: cc })),
      messages: [{ role: 'user', content: [{ type: 'text', text: 'a', cache_control: cc }, { type: 'text', text: 'b', cache_control: cc }] }],
    });
    assert.equal(emu.requests.every((r) => r.status === 400), true);
    // Four breakpoints are fine.
    const ok = await client.messages.create({
      ...base,
      system: [1, 2, 3].map((i) => ({ type: 'text' as const, text: `s${i}`, cache_control: cc })),
      messages: [{ role: 'user', content: [{ type: 'text', text: 'a', cache_control: cc }] }],
    });
    assert.equal(ok.type, 'message');
  }));

test('function replies see the tool_result and drive a small agent loop', () =>
  withEmulator(async (emu, client) => {
    emu.script([
      reply.toolUse({ name: 'add', input: { a: 2, b: 3 } }),
      (req) => {
        const last = req.body.messages.at(-1);
        const result = last.content.find((b: any) => b.type === 'tool_result');
        return reply.text(`the sum is ${result.content}`);
      },
    ]);
    const messages: Anthropic.MessageParam[] = [user('add 2 and 3')];
    for (let turn = 0; turn < 5; turn++) {
      const msg = await client.messages.stream({ ...base, messages }).finalMessage();
      messages.push({ role: 'assistant', content: msg.content as any });
      if (msg.stop_reason !== 'tool_use') break;
      const results = msg.content.filter((b) => b.type === 'tool_use').map((b: any) => ({
        type: 'tool_result' as const, tool_use_id: b.id, content: String(b.input.a + b.input.b),
      }));
      messages.push({ role: 'user', content: results });
    }
    assert.equal(messages.length, 4);
    assert.equal(emu.errors.length, 0);
    assert.equal((messages[3]!.content as any)[0].text, 'the sum is 5');
    assert.equal(emu.requests.length, 2);

    // A reply function that throws becomes a 500 and is kept in emu.errors.
    emu.enqueue(() => { throw new Error('script bug'); });
    const err = await client.messages.create({ ...base, messages: [user('q')] }).then(() => null, (e) => e);
    assert.ok(err instanceof InternalServerError, String(err));
    assert.match(emu.errors[0]!.message, /script bug/);
  }));

test('prompt cache usage: second request reads what the first wrote', () =>
  withEmulator(async (emu, client) => {
    const cc = { type: 'ephemeral' as const };
    const system = [{ type: 'text' as const, text: 'You are a careful assistant. '.repeat(40), cache_control: cc }];
    const tools = [{ name: 'bash', description: 'run a command', input_schema: { type: 'object' as const } }];
    const m1: Anthropic.MessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'first question', cache_control: cc }] }];
    const r1 = await client.messages.create({ ...base, system, tools, messages: m1 });
    assert.equal(r1.usage.cache_read_input_tokens, 0);
    assert.ok(r1.usage.cache_creation_input_tokens! > 0);

    const m2: Anthropic.MessageParam[] = [
      { role: 'user', content: [{ type: 'text', text: 'first question' }] },
      { role: 'assistant', content: r1.content as any },
      { role: 'user', content: [{ type: 'text', text: 'second question', cache_control: cc }] },
    ];
    const r2 = await client.messages.stream({ ...base, system, tools, messages: m2 }).finalMessage();
    assert.equal(r2.usage.cache_read_input_tokens, r1.usage.cache_read_input_tokens! + r1.usage.cache_creation_input_tokens!);
    assert.ok(r2.usage.cache_creation_input_tokens! > 0);

    // A changed system prompt misses the cache entirely.
    const r3 = await client.messages.create({ ...base, system: [{ ...system[0]!, text: 'different' }], tools, messages: m1 });
    assert.equal(r3.usage.cache_read_input_tokens, 0);
    // Without breakpoints there is neither read nor write.
    const r4 = await client.messages.create({ ...base, messages: [user('x')] });
    assert.equal(r4.usage.cache_read_input_tokens, 0);
    assert.equal(r4.usage.cache_creation_input_tokens, 0);
    // Identical request: everything up to the breakpoint is read.
    const r5 = await client.messages.create({ ...base, system, tools, messages: m1 });
    assert.equal(r5.usage.cache_creation_input_tokens, 0);
    assert.equal(r5.usage.cache_read_input_tokens, r1.usage.cache_creation_input_tokens);
    assert.equal(r5.usage.input_tokens, r1.usage.input_tokens);
    emu.clearCache();
    const r6 = await client.messages.create({ ...base, system, tools, messages: m1 });
    assert.equal(r6.usage.cache_read_input_tokens, 0);
  }));

test('hang: request stays in flight until the client aborts', () =>
  withEmulator(async (emu, client) => {
    emu.script([reply.hang(), reply.hang({ afterEvents: 3 })]);
    const ac = new AbortController();
    const p = client.messages.create({ ...base, messages: [user('q')] }, { signal: ac.signal });
    await emu.waitFor(() => emu.inFlight === 1);
    ac.abort();
    await assert.rejects(p);
    await emu.waitFor(() => emu.inFlight === 0);
    assert.equal(emu.requests[0]!.aborted, true);

    // A stream that starts and then goes silent: openStreams stays at 1 until aborted.
    const ac2 = new AbortController();
    const stream = client.messages.stream({ ...base, messages: [user('q')] }, { signal: ac2.signal });
    const done = stream.finalMessage().then(() => 'resolved', () => 'rejected');
    await emu.waitFor(() => emu.openStreams === 1);
    assert.equal(emu.inFlight, 1);
    ac2.abort();
    assert.equal(await done, 'rejected');
    await emu.waitFor(() => emu.openStreams === 0 && emu.inFlight === 0);
  }));

test('close() ends hanging requests and streams; disconnects are not marked aborted', async () => {
  const emu = await startModelEmulator();
  const client = new Anthropic({ apiKey: 'k', baseURL: emu.url, maxRetries: 0 });
  emu.script([reply.disconnect(), reply.hang(), reply.hang({ afterEvents: 2 })]);
  await assert.rejects(client.messages.create({ ...base, messages: [user('q')] }));
  assert.equal(emu.requests[0]!.disconnected, true);
  assert.equal(emu.requests[0]!.aborted, undefined);
  const p1 = client.messages.create({ ...base, messages: [user('q')] }).then(() => 'resolved', () => 'rejected');
  const p2 = client.messages.stream({ ...base, messages: [user('q')] }).finalMessage().then(() => 'resolved', () => 'rejected');
  await emu.waitFor(() => emu.inFlight === 2 && emu.openStreams === 1);
  await emu.close();
  assert.deepEqual(await Promise.all([p1, p2]), ['rejected', 'rejected']);
  assert.equal(emu.inFlight, 0);
  assert.equal(emu.openStreams, 0);
});

test('delay before first byte, chunk delays, and waitForRequests', () =>
  withEmulator(async (emu, client) => {
    emu.enqueue(reply.text('slow reply', { delayMs: 30, chunkDelayMs: 5, chunks: 3 }));
    const p = client.messages.stream({ ...base, messages: [user('q')] }).finalMessage();
    const seen = await emu.waitForRequests(1);
    assert.equal(seen[0]!.body.messages[0].content, 'q');
    const msg = await p;
    assert.equal((msg.content[0] as any).text, 'slow reply');
  }));

test('default reply echoes the last user text; custom default; independent instances', async () => {
  const a = await startModelEmulator();
  const b = await startModelEmulator({ defaultReply: reply.text('fixed') });
  try {
    assert.notEqual(a.url, b.url);
    const ca = new Anthropic({ apiKey: 'anything', baseURL: a.url, maxRetries: 0 });
    const cb = new Anthropic({ apiKey: 'anything', baseURL: b.url, maxRetries: 0 });
    a.enqueue(reply.text('only for a'));
    assert.equal(((await cb.messages.create({ ...base, messages: [user('hello b')] })).content[0] as any).text, 'fixed');
    assert.equal(((await ca.messages.create({ ...base, messages: [user('hello a')] })).content[0] as any).text, 'only for a');
    assert.equal(((await ca.messages.create({ ...base, messages: [user('hello a')] })).content[0] as any).text, 'echo: hello a');
    assert.equal(a.requests.length, 2);
    assert.equal(b.requests.length, 1);
    const nf = await fetch(`${a.url}/v1/nothing`, { method: 'POST', headers: { 'x-api-key': 'k' } });
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as any).error.type, 'not_found_error');
  } finally {
    await a.close();
    await b.close();
  }
});
