// Session MCP servers inside the sandbox: real third-party servers, one that crashes, one that never starts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalProvider } from '../sandbox/provider.js';
import type { Sandbox } from '../sandbox/types.js';
import { bash, fixturePath, makePlayground, packageRoot, textOf, waitUntilGone, type Playground } from './support/sandbox-fixtures.js';

const provider = createLocalProvider();
process.env.AGENTD_MCP_PARENT_SECRET = 'must-not-leak'; // set before any sandbox starts
const everything = path.join(packageRoot, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const memory = path.join(packageRoot, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');

describe('session MCP servers', () => {
  let pg: Playground;
  let sb: Sandbox;
  before(async () => {
    pg = makePlayground();
    sb = await provider.provision({
      sessionId: 'mcp',
      workspace: pg.workspace,
      env: { AGENTD_TEST_TAG: pg.tag },
      mcpServers: [
        { name: 'everything', command: process.execPath, args: [everything, 'stdio'] },
        { name: 'memory', command: process.execPath, args: [memory], env: { MEMORY_FILE_PATH: path.join(pg.workspace, 'memory.jsonl') } },
        { name: 'crashy', command: process.execPath, args: [fixturePath('sandbox-crashing-server.js')] },
        { name: 'missing', command: '/nonexistent/mcp-server' },
      ],
    });
  });
  after(async () => {
    await sb.close();
    assert.deepEqual(await waitUntilGone(pg.tag), []);
    pg.cleanup();
  });

  it('lists their tools namespaced after the built-ins', async () => {
    const names = (await sb.tools()).map((t) => t.name);
    assert.deepEqual(names.slice(0, 6), ['bash', 'read_file', 'write_file', 'edit_file', 'glob', 'grep']);
    for (const name of ['mcp__everything__echo', 'mcp__everything__get-sum', 'mcp__everything__get-tiny-image', 'mcp__memory__create_entities', 'mcp__memory__read_graph', 'mcp__crashy__ok', 'mcp__crashy__crash']) {
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    }
    assert.equal(names.some((n) => n.startsWith('mcp__missing__')), false);
    const echo = (await sb.tools()).find((t) => t.name === 'mcp__everything__echo')!;
    assert.equal(echo.inputSchema.type, 'object');
  });

  it('calls server-everything: text and image content', async () => {
    const echo = await sb.execute('mcp__everything__echo', { message: 'hi from the model' });
    assert.equal(echo.isError, false);
    assert.match(textOf(echo), /hi from the model/);
    const sum = await sb.execute('mcp__everything__get-sum', { a: 2, b: 40 });
    assert.match(textOf(sum), /42/);
    const image = await sb.execute('mcp__everything__get-tiny-image', {});
    assert.ok(image.content.some((c) => c.type === 'image' && c.mimeType === 'image/png'));
  });

  it('runs the servers inside the boundary: server-everything sees the sandbox env, not ours', async () => {
    const env = await sb.execute('mcp__everything__get-env', {});
    assert.equal(env.isError, false);
    assert.match(textOf(env), new RegExp(pg.tag));
    assert.doesNotMatch(textOf(env), /must-not-leak/);
  });

  it('calls server-memory, which stores its graph in the workspace', async () => {
    const created = await sb.execute('mcp__memory__create_entities', {
      entities: [{ name: 'agentd', entityType: 'project', observations: ['runs sandboxes'] }],
    });
    assert.equal(created.isError, false, textOf(created));
    const graph = await sb.execute('mcp__memory__read_graph', {});
    assert.match(textOf(graph), /runs sandboxes/);
    assert.match(readFileSync(path.join(pg.workspace, 'memory.jsonl'), 'utf8'), /agentd/);
  });

  it('turns a server that crashes mid-call into tool errors, and the sandbox carries on', async () => {
    assert.equal(textOf(await sb.execute('mcp__crashy__ok', {})), 'ok');
    const crash = await sb.execute('mcp__crashy__crash', {});
    assert.equal(crash.isError, true);
    assert.equal(crash.errorKind, 'tool_error');
    assert.match(textOf(crash), /mcp__crashy__crash failed/);
    const after = await sb.execute('mcp__crashy__ok', {});
    assert.equal(after.errorKind, 'tool_error');
    assert.match(textOf(after), /MCP server "crashy" exited/);
    assert.equal(textOf(await bash(sb, 'echo still here')), 'still here\n[exit code: 0]');
    assert.match(textOf(await sb.execute('mcp__everything__echo', { message: 'others unaffected' })), /others unaffected/);
  });

  it('turns a server that never started, or an unknown server, into tool errors', async () => {
    const missing = await sb.execute('mcp__missing__anything', {});
    assert.equal(missing.errorKind, 'tool_error');
    assert.match(textOf(missing), /MCP server "missing" failed to start/);
    const unknown = await sb.execute('mcp__nosuch__tool', {});
    assert.equal(unknown.errorKind, 'tool_error');
    assert.match(textOf(unknown), /no MCP server named "nosuch"/);
  });

  it('refuses invalid server names at provision time', async () => {
    await assert.rejects(provider.provision({ sessionId: 'bad', workspace: pg.workspace, mcpServers: [{ name: 'a__b', command: 'x' }] }), /MCP server name/);
  });
});
