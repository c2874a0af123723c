/** The committed JSON Schema is the code's, and the layers import only what the design allows. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolJsonSchema } from '../protocol/schema.js';
import { withReference } from '../protocol/reference.js';
import { ClientRequests, DaemonMessages, EVENT_TYPES } from '../protocol/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(root, dir, name);
    if (statSync(path).isDirectory()) return sources(relative(root, path));
    return name.endsWith('.ts') || name.endsWith('.cts') ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const fromClauses = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)];
  // import('...') and require('...') count too: a lazy import is still an import.
  const calls = [...text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)];
  return [...fromClauses, ...calls].map((m) => m[1]!);
}

describe('protocol schema', () => {
  it('matches the committed protocol/schema/agentd.schema.json (run `npm run schema` after changing the protocol)', () => {
    const committed = JSON.parse(readFileSync(join(root, 'protocol/schema/agentd.schema.json'), 'utf8'));
    assert.deepEqual(committed, JSON.parse(JSON.stringify(protocolJsonSchema())));
  });

  it('describes every method and event type', () => {
    const schema = protocolJsonSchema() as { methods: Record<string, unknown>; eventData: Record<string, unknown> };
    assert.deepEqual(Object.keys(schema.methods).sort(), [...Object.keys(ClientRequests), ...Object.keys(DaemonMessages)].sort());
    assert.deepEqual(Object.keys(schema.eventData).sort(), [...EVENT_TYPES].sort());
  });
});

describe('docs/design.md', () => {
  it('has the methods, events and error codes of the code (run `npm run schema` after changing the protocol)', () => {
    const committed = readFileSync(join(root, 'docs/design.md'), 'utf8');
    assert.equal(committed, withReference(committed));
  });

  it('is what the README links to, and no document links outside the repo', () => {
    assert.match(readFileSync(join(root, 'README.md'), 'utf8'), /\]\(docs\/design\.md\)/);
    for (const doc of ['README.md', 'docs/design.md', 'clients/vscode/README.md']) {
      const text = readFileSync(join(root, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)[^)]*\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue; // a web address, not a file
        const path = resolve(dirname(join(root, doc)), target!);
        assert.ok(path.startsWith(root), `${doc} links ${target}, outside the repo`);
        assert.ok(statSync(path, { throwIfNoEntry: false }), `${doc} links ${target}, which does not exist`);
      }
    }
  });
});

describe('layering', () => {
  const insideProtocol = (spec: string, file: string) => resolve(dirname(file), spec).startsWith(join(root, 'protocol') + sep);
  // The product never reaches into the tests (npm pack leaves test/ out).
  const notTest = (spec: string) => !/(^|\/)test\//.test(spec);
  const allowed: Record<string, (spec: string, file: string) => boolean> = {
    // The wire contract stands alone: zod, vscode-jsonrpc and itself.
    protocol: (s, f) => s === 'zod' || s === 'vscode-jsonrpc' || (s.startsWith('.') && insideProtocol(s, f)),
    // The sandbox knows neither the daemon nor the clients.
    sandbox: (s) => notTest(s) && !/(^|\/)(daemon|clients)\//.test(s),
    // Clients speak the protocol; they never reach into the daemon.
    clients: (s) => notTest(s) && !/(^|\/)daemon\//.test(s),
    // Nothing imports clients/ except the composition root (bin/) and tests.
    daemon: (s) => notTest(s) && !/(^|\/)clients\//.test(s),
    bin: notTest,
  };
  for (const [dir, ok] of Object.entries(allowed)) {
    it(`${dir}/ imports only what the design allows`, () => {
      for (const file of sources(dir)) {
        for (const spec of imports(file)) {
          assert.ok(ok(spec, file), `${relative(root, file)} imports ${spec}`);
        }
      }
    });
  }

  // The provider's interface (sandbox/types.ts) for everyone, its factory (sandbox/provider.ts) for the composition root.
  const SANDBOX_API = ['sandbox/types.ts', 'sandbox/provider.ts'];
  it(`the rest of agentd imports only ${SANDBOX_API.join(' and ')} from sandbox/`, () => {
    for (const dir of ['daemon', 'clients', 'bin', 'protocol']) {
      for (const file of sources(dir)) {
        for (const spec of imports(file).filter((s) => s.startsWith('.'))) {
          const target = relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
          if (target.startsWith(`sandbox${sep}`)) assert.ok(SANDBOX_API.includes(target), `${relative(root, file)} imports ${target}`);
        }
      }
    }
  });

  it('sandbox/ has no import cycle', () => {
    const graph = new Map<string, string[]>();
    for (const file of sources('sandbox')) {
      const local = imports(file).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts'));
      graph.set(file, local);
    }
    // Depth-first, with the path so far: a node met again on it closes a cycle.
    const done = new Set<string>();
    const visit = (file: string, path: string[]) => {
      const at = path.indexOf(file);
      assert.equal(at, -1, `import cycle: ${[...path.slice(at), file].map((f) => relative(root, f)).join(' -> ')}`);
      if (done.has(file)) return;
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      done.add(file);
    };
    for (const file of graph.keys()) visit(file, []);
  });
});

describe('daemon layering', () => {
  /** The daemon module an import names, as a path from the repo root (undefined outside daemon/). */
  const daemonTarget = (spec: string, file: string): string | undefined => {
    if (!spec.startsWith('.')) return undefined;
    const target = relative(root, resolve(dirname(file), spec));
    return target.startsWith(`daemon${sep}`) ? target.split(sep).join('/') : undefined;
  };
  const rules: Array<{ dir: string; why: string; ok: (target: string) => boolean }> = [
    {
      dir: 'daemon/harness',
      why: 'the harness is handed the daemon services it uses (daemon/harness/deps.ts); of the daemon it imports only the log and the typed event writer',
      ok: (t) => /^daemon\/(harness|log)\//.test(t) || t === 'daemon/events.js',
    },
    { dir: 'daemon/rpc', why: 'the server wires the handler table in; rpc does not import it back', ok: (t) => !/^daemon\/(handlers\/|server\.js)/.test(t) },
    { dir: 'daemon/log', why: 'the session log stores envelopes and knows nothing of the daemon around it', ok: (t) => t.startsWith('daemon/log/') },
  ];
  for (const rule of rules) {
    it(`${rule.dir}/ imports only what the design allows: ${rule.why}`, () => {
      for (const file of sources(rule.dir)) {
        for (const spec of imports(file)) {
          const target = daemonTarget(spec, file);
          assert.ok(target === undefined || rule.ok(target), `${relative(root, file)} imports ${spec}`);
        }
      }
    });
  }

  it('writes events only through the typed writer (daemon/events.ts), and reads their data only narrowed by type', () => {
    const untyped = [/\blog\.append\(/, /\b(?:event|e|ev)\.data(?:\[| as\b)/, /as ContentBlock\[\]/, /String\(\w+\.data\b/];
    for (const file of sources('daemon')) {
      const path = relative(root, file).split(sep).join('/');
      if (path.startsWith('daemon/log/') || path === 'daemon/events.ts') continue;
      const text = readFileSync(file, 'utf8');
      for (const pattern of untyped) assert.doesNotMatch(text, pattern, `${path} has ${pattern}`);
    }
  });
});
