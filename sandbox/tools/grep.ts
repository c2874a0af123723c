import { spawn } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { capText, defineTool, text, ToolFailure, type ToolContext } from './define.js';
import { displayPath, resolveInWorkspace } from './paths.js';
import { globMatcher, walkFiles } from './walk.js';

const MAX_OUTPUT_CHARS = 30_000;
const MAX_LINE_CHARS = 500;
const MAX_MATCHES = 2_000;
const MAX_FILE_BYTES = 10 * 1024 * 1024;

interface Search {
  pattern: string;
  target: string; // absolute file or directory inside the workspace
  glob: string | undefined;
}

function runRipgrep(rg: string, search: Search, ctx: ToolContext): Promise<string> {
  const args = ['--line-number', '--no-heading', '--with-filename', '--color', 'never', '--hidden', '--no-ignore', '--sort', 'path'];
  args.push('--max-columns', String(MAX_LINE_CHARS), '--max-columns-preview', '--glob', '!.git', '--max-count', String(MAX_MATCHES));
  if (search.glob) args.push('--glob', search.glob);
  args.push('--regexp', search.pattern, '--', path.relative(ctx.workspace, search.target) || '.');
  return new Promise((resolve, reject) => {
    const child = spawn(rg, args, { cwd: ctx.workspace, stdio: ['ignore', 'pipe', 'pipe'], signal: ctx.signal });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (out.length < MAX_OUTPUT_CHARS * 4) out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 || code === 1) resolve(out.replace(/^\.\//gm, ''));
      else reject(new ToolFailure(`grep failed: ${err.trim() || `ripgrep exited with ${code}`}`));
    });
  });
}

async function isBinary(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(8192);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead).includes(0);
  } finally {
    await handle.close();
  }
}

/** The built-in search used when ripgrep is absent; same output shape as the ripgrep path. */
async function runBuiltin(search: Search, ctx: ToolContext): Promise<string> {
  let regex: RegExp;
  try {
    regex = new RegExp(search.pattern);
  } catch (error) {
    throw new ToolFailure(`grep failed: invalid regular expression: ${(error as Error).message}`);
  }
  // As ripgrep's --glob: a glob without "/" matches file names anywhere.
  const matchesFilter = search.glob ? globMatcher(search.glob, { basename: true }) : () => true;
  const info = await stat(search.target);
  const files: string[] = [];
  if (info.isFile()) files.push(search.target);
  else for await (const rel of walkFiles(search.target, ctx.signal)) if (matchesFilter(rel)) files.push(path.join(search.target, rel));
  files.sort();
  const lines: string[] = [];
  let size = 0;
  for (const file of files) {
    if (ctx.signal.aborted || size > MAX_OUTPUT_CHARS * 4) break;
    const fileInfo = await stat(file).catch(() => null);
    if (!fileInfo || fileInfo.size > MAX_FILE_BYTES || (await isBinary(file))) continue;
    const body = (await readFile(file)).toString('utf8');
    const shown = displayPath(ctx.workspace, file);
    let perFile = 0;
    body.split('\n').forEach((line, index) => {
      if (perFile >= MAX_MATCHES || !regex.test(line)) return;
      perFile++;
      const clipped = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)} [... omitted end of long line]` : line;
      const entry = `${shown}:${index + 1}:${clipped}`;
      size += entry.length + 1;
      lines.push(entry);
    });
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export const grepTool = defineTool({
  name: 'grep',
  description:
    'Search file contents in the workspace with a regular expression (ripgrep syntax). Prints matching lines as path:line:text, sorted by path. ' +
    'Optionally limit to a file or directory (path) and to file names matching a glob (e.g. "*.ts"; a glob without "/" matches file names anywhere).',
  input: z.object({
    pattern: z.string().describe('Regular expression to search for'),
    path: z.string().optional().describe('File or directory to search, relative to the workspace root (default: the whole workspace)'),
    glob: z.string().optional().describe('Only search files matching this glob, e.g. "*.py" or "src/**/*.ts"'),
  }),
  async handler(input, ctx) {
    if (input.pattern.length === 0) throw new ToolFailure('pattern is empty');
    const target = resolveInWorkspace(ctx.workspace, input.path ?? '.');
    if (!(await stat(target).catch(() => null))) throw new ToolFailure(`path not found: ${displayPath(ctx.workspace, target)}`);
    const search: Search = { pattern: input.pattern, target, glob: input.glob };
    const output = ctx.ripgrep ? await runRipgrep(ctx.ripgrep, search, ctx) : await runBuiltin(search, ctx);
    if (output.length === 0) return text(`no matches for ${JSON.stringify(input.pattern)}`);
    return text(capText(output.replace(/\n$/, ''), MAX_OUTPUT_CHARS));
  },
});
