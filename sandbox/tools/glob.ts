import path from 'node:path';
import { z } from 'zod';
import { defineTool, text, ToolFailure } from './define.js';
import { globMatcher, walkFiles } from './walk.js';

const MAX_RESULTS = 1_000;

export const globTool = defineTool({
  name: 'glob',
  description:
    'List workspace files whose path (relative to the workspace root) matches a glob pattern, sorted by path. ' +
    'Supports ** (any directories), *, ?, {a,b} and [abc]; for example "**/*.ts" or "src/**/test_*.py". The .git directory is skipped.',
  input: z.object({
    pattern: z.string().describe('Glob pattern relative to the workspace root, e.g. "**/*.ts"'),
  }),
  async handler(input, ctx) {
    let pattern = input.pattern.trim();
    if (path.isAbsolute(pattern)) {
      const rel = path.relative(ctx.workspace, pattern);
      if (rel.startsWith('..') || path.isAbsolute(rel)) throw new ToolFailure(`pattern ${JSON.stringify(input.pattern)} is outside the workspace; access refused`);
      pattern = rel;
    }
    if (pattern.split('/').includes('..')) throw new ToolFailure('patterns may not contain ".."; the workspace root is the top');
    pattern = pattern.replace(/^\.\//, '');
    if (pattern === '') throw new ToolFailure('pattern is empty');
    const matches = globMatcher(pattern);
    const found: string[] = [];
    let total = 0;
    for await (const file of walkFiles(ctx.workspace, ctx.signal)) {
      if (!matches(file)) continue;
      total++;
      if (found.length < MAX_RESULTS) found.push(file);
    }
    if (total === 0) return text(`no files match ${JSON.stringify(input.pattern)}`);
    found.sort();
    const more = total > MAX_RESULTS ? `\n[${total - MAX_RESULTS} more matches not shown; narrow the pattern]` : '';
    return text(found.join('\n') + more);
  },
});
