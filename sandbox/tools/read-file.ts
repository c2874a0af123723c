import { statSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { capText, defineTool, text, ToolFailure } from './define.js';
import { displayPath, resolveInWorkspace } from './paths.js';
import { readRegular } from './regular-file.js';

const MAX_FILE_BYTES = 10 * 1024 * 1024;
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
const MAX_OUTPUT_CHARS = 100_000;
const MAX_LINE_CHARS = 2_000;
const DEFAULT_LIMIT = 2_000;
const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp' };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decode(bytes: Buffer): { text: string; note: string } {
  try {
    return { text: strictUtf8.decode(bytes), note: '' };
  } catch {
    return { text: bytes.toString('latin1'), note: '[file is not valid UTF-8; shown decoded as Latin-1]\n' };
  }
}

export const readFileTool = defineTool({
  name: 'read_file',
  description:
    'Read a text file in the workspace. Returns lines prefixed with their 1-based line numbers. ' +
    'Use offset and limit to read a range of a large file. Images (png, jpeg, gif, webp) are returned as images; other binary files are refused.',
  input: z.object({
    path: z.string().check(z.describe('File path, relative to the workspace root (or absolute inside it)')),
    offset: z.optional(z.number().check(z.int(), z.minimum(1), z.describe('1-based line number to start reading at (default 1)'))),
    limit: z.optional(z.number().check(z.int(), z.minimum(1), z.describe(`Maximum number of lines to return (default ${DEFAULT_LIMIT})`))),
  }),
  async handler(input, ctx) {
    const file = resolveInWorkspace(ctx.workspace, input.path);
    const shown = displayPath(ctx.workspace, file);
    const info = statSync(file, { throwIfNoEntry: false });
    if (!info) throw new ToolFailure(`file not found: ${shown}`);
    if (info.isDirectory()) throw new ToolFailure(`${shown} is a directory; use glob to list files`);
    if (!info.isFile()) throw new ToolFailure(`${shown} is not a regular file`);
    if (info.size === 0) return text(`(${shown} is empty)`);
    const mimeType = IMAGE_TYPES[path.extname(file).toLowerCase()];
    if (mimeType && info.size <= MAX_IMAGE_BYTES) {
      const data = readRegular(file, shown, info.size);
      return { content: [{ type: 'image', data: data.toString('base64'), mimeType }] };
    }
    if (info.size > MAX_FILE_BYTES) {
      throw new ToolFailure(`${shown} is ${info.size} bytes, over the ${MAX_FILE_BYTES}-byte limit; read it with bash (head, sed -n) or grep`);
    }
    const bytes = readRegular(file, shown, info.size);
    if (bytes.subarray(0, 8192).includes(0)) {
      throw new ToolFailure(`${shown} looks binary (${info.size} bytes, contains NUL bytes); not shown`);
    }
    const { text: body, note } = decode(bytes);
    const lines = body.split('\n');
    if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
    const offset = input.offset ?? 1;
    const limit = input.limit ?? DEFAULT_LIMIT;
    if (offset > lines.length) throw new ToolFailure(`offset ${offset} is past the end of ${shown} (${lines.length} lines)`);
    const slice = lines.slice(offset - 1, offset - 1 + limit);
    const numbered = slice
      .map((line, i) => {
        const clipped = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}[... line truncated]` : line;
        return `${String(offset + i).padStart(6)}\t${clipped}`;
      })
      .join('\n');
    const end = offset - 1 + slice.length;
    const more = end < lines.length ? `\n[showing lines ${offset}-${end} of ${lines.length}; use offset to read more]` : '';
    return text(note + capText(numbered, MAX_OUTPUT_CHARS) + more);
  },
});
