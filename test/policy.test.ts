/**
 * The permission policy: pattern matching as a unit (pure), and the attack it must hold
 * against, for real: a model that spells a denied path another way (`..`, absolute) or
 * hides a denied command behind `/..` or a newline, through the emulator's tool calls.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SessionPrompt } from '../protocol/index.js';
import { reply } from '../clients/cli/demo/model-emulator.js';
import { decide, matches } from '../daemon/harness/policy.js';
import { createSession, ofType, settle, startAgentRig, workspace, type AgentRig } from './support/agent.js';
import { withFixture } from './support/fixture.js';

const WS = '/home/me/project';
const call = (name: string, input: Record<string, unknown> = {}) => ({ name, input });

describe('policy patterns', () => {
  const cases: Array<[pattern: string, name: string, input: Record<string, unknown>, expected: boolean]> = [
    ['bash', 'bash', { command: 'ls' }, true],
    ['bash', 'read_file', { path: 'a' }, false],
    ['mcp__memory__*', 'mcp__memory__read_graph', {}, true],
    ['mcp__memory__*', 'mcp__memoryx', {}, false],
    ['*', 'anything_at_all', {}, true],
    ['bash(git *)', 'bash', { command: 'git push origin feature/x' }, true],
    ['bash(git *)', 'bash', { command: 'gitk' }, false],
    ['bash(git status)', 'bash', { command: 'git status' }, true],
    ['bash(git status)', 'bash', { command: 'git status --short' }, false],
    // `*` crosses `/`, `..` segments and newlines: a command is not a path.
    ['bash(rm *)', 'bash', { command: 'rm -rf /../etc' }, true],
    ['bash(rm *)', 'bash', { command: 'rm -rf x\necho done' }, true],
    ['bash(echo {a,b})', 'bash', { command: 'echo b' }, true],
    ['bash(ls ?)', 'bash', { command: 'ls x' }, true],
    ['bash(ls [!x])', 'bash', { command: 'ls x' }, false],
    // Paths are matched as the workspace-relative path they name.
    ['write_file(src/*)', 'write_file', { path: 'src/a/b.ts' }, true],
    ['write_file(src/*)', 'write_file', { path: './src/a.ts' }, true],
    ['write_file(.git/*)', 'write_file', { path: 'src/../.git/config' }, true],
    ['write_file(.git/*)', 'write_file', { path: `${WS}/.git/hooks/pre-commit` }, true],
    ['write_file(src/*)', 'write_file', { path: 'src/../../elsewhere/x' }, false],
    ['read_file(/etc/*)', 'read_file', { path: '../../../etc/passwd' }, true],
    ['write_file(*.env)', 'write_file', { path: '.env' }, true],
    ['write_file(src/*)', 'write_file', {}, false],
    ['glob(**/*.ts)', 'glob', { pattern: '**/*.ts' }, true],
    ['unknown_tool(x)', 'unknown_tool', { x: 'x' }, false],
    ['bad(pattern', 'bash', { command: 'x' }, false],
  ];
  for (const [pattern, name, input, expected] of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${name} ${JSON.stringify(input)}`, () => {
      assert.equal(matches(pattern, call(name, input), WS), expected);
    });
  }

  it('deny wins over allow and allow_always; the default decides the rest', () => {
    const policy = { default: 'ask' as const, allow: ['bash', 'write_file(src/*)'], deny: ['bash(rm *)'] };
    assert.equal(decide(policy, new Set(), call('bash', { command: 'ls' }), WS), 'allow');
    assert.equal(decide(policy, new Set(['bash']), call('bash', { command: 'rm -rf /' }), WS), 'deny');
    assert.equal(decide(policy, new Set(), call('write_file', { path: 'docs/x' }), WS), 'ask');
    assert.equal(decide(policy, new Set(['write_file']), call('write_file', { path: 'docs/x' }), WS), 'allow');
    assert.equal(decide(undefined, new Set(), call('bash', { command: 'ls' }), WS), 'ask');
    assert.equal(decide({ default: 'deny' }, new Set(), call('glob', { pattern: '*' }), WS), 'deny');
  });
});

describe('policy attacks', () => {
  it('holds a deny list however the model spells a path or a command', async (t) => {
    await withFixture(startAgentRig(), async (rig) => {
      await t.test('a denied path stays denied however the model spells it', () => deniedPath(rig));
      await t.test('a denied command stays denied behind /.. and a newline', () => deniedCommand(rig));
    });
  });
});

async function deniedPath(rig: AgentRig): Promise<void> {
  const client = await rig.daemon.client();
  const ws = workspace();
  mkdirSync(join(ws, '.git'));
  mkdirSync(join(ws, 'src'));
  writeFileSync(join(ws, '.git', 'config'), 'original\n');
  const sessionId = await createSession(client, { workspace: ws, permissions: { default: 'allow', deny: ['write_file(.git/*)', 'edit_file(.git/*)'] } });
  const attempts = [
    { name: 'write_file', input: { path: 'src/../.git/config', content: 'pwned\n' } },
    { name: 'write_file', input: { path: `${ws}/.git/hooks/pre-commit`, content: 'pwned\n' } },
    { name: 'write_file', input: { path: './.git//hooks/post-checkout', content: 'pwned\n' } },
    { name: 'edit_file', input: { path: 'src/./../.git/config', old_string: 'original', new_string: 'pwned' } },
  ];
  rig.emulator.script([...attempts.map((a) => reply.toolUse(a)), reply.text('done')]);
  await client.request(SessionPrompt, { sessionId, content: 'change the git config' });
  const results = ofType(await settle(client, sessionId), 'tool.result');
  assert.deepEqual(results.map((e) => e.data.errorKind), ['denied', 'denied', 'denied', 'denied']);
  assert.equal(readFileSync(join(ws, '.git', 'config'), 'utf8'), 'original\n');
  assert.ok(!existsSync(join(ws, '.git', 'hooks')), 'no hook was written');
}

async function deniedCommand(rig: AgentRig): Promise<void> {
  const client = await rig.daemon.client();
  const ws = workspace();
  writeFileSync(join(ws, 'keep.txt'), 'keep\n');
  const sessionId = await createSession(client, { workspace: ws, permissions: { default: 'allow', deny: ['bash(rm *)'] } });
  rig.emulator.script([
    reply.toolUse({ name: 'bash', input: { command: `rm -f ${ws}/../${ws.split('/').at(-1)}/keep.txt` } }),
    reply.toolUse({ name: 'bash', input: { command: 'rm -f keep.txt\necho removed' } }),
    reply.text('done'),
  ]);
  await client.request(SessionPrompt, { sessionId, content: 'remove keep.txt' });
  const results = ofType(await settle(client, sessionId), 'tool.result');
  assert.deepEqual(results.map((e) => e.data.errorKind), ['denied', 'denied']);
  assert.equal(readFileSync(join(ws, 'keep.txt'), 'utf8'), 'keep\n');
}
