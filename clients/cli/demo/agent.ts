/**
 * The scripted model behind `agentd demo`: a Messages-API reply function for the
 * emulator that acts like a small coding agent on the demo project. It keeps no
 * state of its own: every step is decided from the conversation in the request (the
 * tool calls made so far and what they returned), as a real model's would be.
 */
import type { RecordedRequest, Reply } from './model-emulator.js';

/** The demo project: a tiny library with an off-by-one in `mean`, and its check. */
export const DEMO_FILES: Record<string, string> = {
  'README.md': [
    '# stats',
    '',
    'A tiny statistics helper: `sum`, `mean` and `max` in `lib/stats.js`.',
    '',
    'Check it with `node test.js` (it prints one line per case and exits non-zero on a failure).',
    '',
  ].join('\n'),
  'package.json': `${JSON.stringify({ name: 'stats', version: '1.0.0', private: true, type: 'commonjs', scripts: { test: 'node test.js' } }, null, 2)}\n`,
  'lib/stats.js': [
    "'use strict';",
    '',
    'function sum(values) {',
    '  let total = 0;',
    '  for (const v of values) total += v;',
    '  return total;',
    '}',
    '',
    'function mean(values) {',
    '  if (values.length === 0) return NaN;',
    '  return sum(values) / (values.length + 1);',
    '}',
    '',
    'function max(values) {',
    '  return values.reduce((a, b) => (b > a ? b : a), -Infinity);',
    '}',
    '',
    'module.exports = { sum, mean, max };',
    '',
  ].join('\n'),
  'test.js': [
    "'use strict';",
    "const { sum, mean, max } = require('./lib/stats.js');",
    '',
    'const cases = [',
    "  ['sum([1, 2, 3])', () => sum([1, 2, 3]), 6],",
    "  ['mean([2, 4, 6])', () => mean([2, 4, 6]), 4],",
    "  ['max([3, 9, 4])', () => max([3, 9, 4]), 9],",
    '];',
    'let failed = 0;',
    'for (const [name, run, expected] of cases) {',
    '  const got = run();',
    '  if (got === expected) console.log(`ok   ${name} = ${got}`);',
    '  else {',
    '    failed += 1;',
    '    console.log(`FAIL ${name}: expected ${expected}, got ${got} (lib/stats.js)`);',
    '  }',
    '}',
    'console.log(failed ? `${failed} of ${cases.length} failed` : `all ${cases.length} passed`);',
    'process.exitCode = failed ? 1 : 0;',
    '',
  ].join('\n'),
};

export const DEMO_PROMPT = 'The checks of this project fail. Find the bug, fix it, and confirm the checks pass.';

interface Step {
  name: string;
  input: Record<string, any>;
  output: string;
  isError: boolean;
}

function blockText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b: any) => (b?.type === 'text' ? String(b.text) : '')).join('\n');
}

/** The tool calls since the user's last prompt, each with its result. */
export function stepsOf(body: any): Step[] {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const isPrompt = (m: any) => m?.role === 'user' && (typeof m.content === 'string' || (Array.isArray(m.content) && m.content.some((b: any) => b?.type === 'text')));
  let start = 0;
  messages.forEach((m, i) => {
    if (isPrompt(m)) start = i;
  });
  const calls = new Map<string, Step>();
  const steps: Step[] = [];
  for (const m of messages.slice(start)) {
    if (!Array.isArray(m?.content)) continue;
    for (const b of m.content) {
      if (m.role === 'assistant' && b?.type === 'tool_use') {
        const step: Step = { name: String(b.name), input: b.input ?? {}, output: '', isError: false };
        calls.set(String(b.id), step);
        steps.push(step);
      } else if (m.role === 'user' && b?.type === 'tool_result') {
        const step = calls.get(String(b.tool_use_id));
        if (step) Object.assign(step, { output: blockText(b.content).replace(/\r/g, ''), isError: b.is_error === true });
      }
    }
  }
  return steps;
}

/** Streams like a model does: small chunks with short pauses. */
function say(text: string): Reply {
  return { kind: 'text', text, chunks: Math.max(1, Math.ceil(text.length / 12)), chunkDelayMs: 15 };
}

function act(text: string, name: string, input: Record<string, unknown>): Reply {
  return { kind: 'tool_use', text, calls: [{ name, input }], chunkDelayMs: 15 };
}

/** `read_file` output without its line-number gutter. */
function unnumbered(output: string): string[] {
  return output.split('\n').filter((l) => /^\s*\d+\t/.test(l)).map((l) => l.replace(/^\s*\d+\t/, ''));
}

const passed = (output: string) => /\[exit code: 0\]/.test(output) && !/^FAIL /m.test(output);

/** The next move, from what the tools returned so far. */
export function demoMove(steps: Step[]): Reply {
  const last = steps.at(-1);
  if (!last) return act("I'll start with the README to see what this project is and how it is checked.", 'read_file', { path: 'README.md' });
  if (last.isError) {
    return say(`The ${last.name} call failed (${last.output.split('\n')[0] ?? 'no detail'}), so I'm stopping here rather than guessing.`);
  }
  const check = steps.find((s) => s.name === 'bash')?.input.command as string | undefined;
  const edit = steps.find((s) => s.name === 'edit_file');
  switch (last.name) {
    case 'read_file': {
      if (last.input.path === 'README.md') {
        const command = /`(node [^`]+)`/.exec(last.output)?.[1];
        if (!command) return act('The README names no check; listing the files instead.', 'bash', { command: 'ls -R' });
        return act(`The README says the project is checked with \`${command}\`. Running it.`, 'bash', { command });
      }
      return fixFrom(last, steps);
    }
    case 'bash': {
      const failure = /^FAIL (\w+)\((.*)\): expected (\S+), got (\S+) \((\S+)\)/m.exec(last.output);
      if (passed(last.output)) {
        const total = /all \d+ passed/.exec(last.output)?.[0] ?? 'the checks pass';
        if (!edit) return say(`\`${check}\` passes already (${total}); there is nothing to fix.`);
        return say(
          `Done. \`mean\` in ${String(edit.input.path)} divided the sum by \`values.length + 1\`, so every mean came out too small ` +
            `(\`mean([2, 4, 6])\` gave 3 instead of 4). It now divides by \`values.length\`, and \`${check}\` reports ${total}.`,
        );
      }
      if (!failure) return say(`\`${last.input.command}\` failed in a way I did not expect:\n${last.output}\nStopping here.`);
      const [, fn, args, expected, got, file] = failure;
      if (edit) return say(`\`${fn}(${args})\` still gives ${got} instead of ${expected} after my edit; stopping so you can look.`);
      return act(`\`${fn}(${args})\` should be ${expected} but is ${got}. The failure points at ${file}; reading it.`, 'read_file', { path: file });
    }
    case 'edit_file':
      return act(`Edited ${String(last.input.path)}. Running \`${check}\` again to confirm.`, 'bash', { command: check ?? 'node test.js' });
    default:
      return say(`I did not expect to call ${last.name}; stopping here.`);
  }
}

/** Finds the off-by-one in the function the failing check named, and edits it. */
function fixFrom(read: Step, steps: Step[]): Reply {
  const failing = /^FAIL (\w+)\(/m.exec(steps.find((s) => s.name === 'bash')?.output ?? '')?.[1];
  const lines = unnumbered(read.output);
  const startAt = lines.findIndex((l) => failing !== undefined && new RegExp(`function ${failing}\\b`).test(l));
  const bodyEnd = lines.findIndex((l, i) => i > startAt && l.startsWith('}'));
  const body = startAt < 0 ? [] : lines.slice(startAt, bodyEnd < 0 ? undefined : bodyEnd);
  const buggy = body.find((l) => /\(\s*\w+\.length\s*\+\s*1\s*\)/.test(l));
  if (!buggy) return say(`I read ${String(read.input.path)} but see no obvious bug in \`${failing ?? '?'}\`; stopping here.`);
  const fixed = buggy.replace(/\(\s*(\w+)\.length\s*\+\s*1\s*\)/, '$1.length');
  return act(
    `Found it: \`${failing}\` divides by \`values.length + 1\`, an off-by-one; the mean divides by the count itself. Fixing that line.`,
    'edit_file',
    { path: read.input.path, old_string: buggy, new_string: fixed },
  );
}

/** The emulator's reply function. */
export const demoAgent = (request: RecordedRequest): Reply => demoMove(stepsOf(request.body));
