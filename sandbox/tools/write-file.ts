import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod/mini';
import { defineTool, text } from './define.js';
import { displayPath, resolveInWorkspace } from './paths.js';
import { writeRegular } from './regular-file.js';

export const writeFileTool = defineTool({
  name: 'write_file',
  description: 'Create or overwrite a file in the workspace with the given content. Parent directories are created as needed.',
  input: z.object({
    path: z.string().check(z.describe('File path, relative to the workspace root (or absolute inside it)')),
    content: z.string().check(z.describe('The complete new content of the file')),
  }),
  async handler(input, ctx) {
    const file = resolveInWorkspace(ctx.workspace, input.path);
    await mkdir(path.dirname(file), { recursive: true });
    const shown = displayPath(ctx.workspace, file);
    writeRegular(file, shown, input.content);
    return text(`wrote ${Buffer.byteLength(input.content)} bytes to ${shown}`);
  },
});
