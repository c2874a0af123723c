/** What `npm pack` ships, and `agentd` on the PATH from the checkout (`npm install -g .`), as editor configs run it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { tempHome } from './support/daemon.js';
import { tempDir } from './support/temp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };

/** npm without the network and without lifecycle scripts: the tests run on this build, it must not be rebuilt under them. */
function npm(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync('npm', [...args, '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
}

/** Module specifiers in compiled code; lines that are string literals (the demo project's sources) are text, not imports. */
function specifiers(code: string): string[] {
  const patterns = [/(?:^|[\s};])(?:from|import)\s*['"]([^'"]+)['"]/g, /\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g];
  const lines = code.split('\n').filter((line) => !/^\s*['"`]/.test(line));
  return lines.flatMap((line) => patterns.flatMap((p) => [...line.matchAll(p)].map((m) => m[1]!)));
}

describe('npm pack', () => {
  const packed = npm(['pack', '--dry-run', '--json']);
  const files = (): Set<string> => {
    assert.equal(packed.status, 0, packed.stderr);
    return new Set((JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  };

  it('ships the compiled CLI, daemon, sandbox, clients and docs, and no tests, sources or maps', () => {
    const paths = files();
    for (const needed of ['package.json', 'README.md', 'docs/design.md', 'dist/bin/agentd.cjs', 'dist/bin/main.js', 'dist/daemon/main.js', 'dist/sandbox/host/bundle/main.cjs', 'dist/clients/mcp/main.js', 'dist/clients/acp/main.js', 'dist/clients/cli/demo/model-emulator.js', 'protocol/schema/agentd.schema.json']) {
      assert.ok(paths.has(needed), `${needed} is packed`);
    }
    for (const path of paths) {
      assert.doesNotMatch(path, /^(dist\/)?(test|bench|scripts)\/|^\.ci\/|\.ts$|\.map$|tsbuildinfo/, `${path} is not for users`);
    }
  });

  it('holds every file the packed code imports, and it imports only runtime dependencies', () => {
    const paths = files();
    const allowed = new Set([...builtinModules, ...Object.keys(pkg.dependencies)]);
    for (const file of [...paths].filter((p) => /\.c?js$/.test(p))) {
      for (const spec of specifiers(readFileSync(join(ROOT, file), 'utf8'))) {
        if (spec.startsWith('.')) {
          const target = normalize(join(dirname(file), spec));
          assert.ok(paths.has(target), `${file} imports ${spec}, which is not packed`);
        } else {
          const name = spec.replace(/^node:/, '').split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
          assert.ok(allowed.has(name), `${file} imports ${spec}, not a dependency`);
        }
      }
    }
  });
});

describe('agentd on the PATH (npm install -g .)', () => {
  it('installs from the checkout, and `agentd mcp` by name serves an MCP host', async () => {
    const prefix = tempDir('agentd-global-');
    const installed = npm(['install', '--global', '--prefix', prefix, '.']);
    assert.equal(installed.status, 0, `${installed.stdout}\n${installed.stderr}`);
    const env = { ...(process.env as Record<string, string>), PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
    const version = spawnSync('agentd', ['--version'], { env, encoding: 'utf8' });
    assert.equal(version.stdout, `${pkg.version}\n`, version.stderr);

    // As in the README's editor configs: {"command": "agentd", "args": ["mcp"]}.
    const layout = tempHome();
    const transport = new StdioClientTransport({ command: 'agentd', args: ['mcp'], env: { ...env, AGENTD_HOME: layout.home }, stderr: 'pipe' });
    const client = new Client({ name: 'editor', version: '0.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'agentd_prompt'));
      const listed = await client.callTool({ name: 'agentd_list_sessions', arguments: {} });
      assert.deepEqual(listed.structuredContent, { sessions: [] });
    } finally {
      await client.close();
      const stopped = spawnSync('agentd', ['stop'], { env: { ...env, AGENTD_HOME: layout.home }, encoding: 'utf8' });
      assert.equal(stopped.status, 0, stopped.stderr);
    }
  });
});
