import { stat } from 'node:fs/promises';
import * as z from 'zod/mini';
import { defineTool, text, ToolFailure } from './define.js';
import { displayPath, resolveInWorkspace } from './paths.js';
import { readRegular, writeRegular } from './regular-file.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) count++;
  return count;
}

export const editFileTool = defineTool({
  name: 'edit_file',
  description:
    'Replace an exact string in a file. old_string must occur exactly once (include surrounding lines to make it unique), ' +
    'unless replace_all is true, which replaces every occurrence. Whitespace and indentation must match exactly.',
  input: z.object({
    path: z.string().check(z.describe('File path, relative to the workspace root (or absolute inside it)')),
    old_string: z.string().check(z.describe('The exact text to replace')),
    new_string: z.string().check(z.describe('The text to put in its place')),
    replace_all: z.optional(z.boolean().check(z.describe('Replace every occurrence instead of requiring exactly one (default false)'))),
  }),
  async handler(input, ctx) {
    const file = resolveInWorkspace(ctx.workspace, input.path);
    const shown = displayPath(ctx.workspace, file);
    const info = await stat(file).catch(() => null);
    if (!info) throw new ToolFailure(`file not found: ${shown} (use write_file to create it)`);
    if (!info.isFile()) throw new ToolFailure(`${shown} is not a regular file`);
    if (input.old_string.length === 0) throw new ToolFailure('old_string is empty; use write_file to create or overwrite a file');
    if (input.old_string === input.new_string) throw new ToolFailure('old_string and new_string are identical; nothing to change');
    const bytes = readRegular(file, shown);
    let before: string;
    try {
      if (bytes.includes(0)) throw new Error('binary');
      before = strictUtf8.decode(bytes);
    } catch {
      throw new ToolFailure(`${shown} is not UTF-8 text; edit_file would corrupt it (use bash for binary or other encodings)`);
    }
    const count = countOccurrences(before, input.old_string);
    if (count === 0) throw new ToolFailure(`old_string was not found in ${shown}; it must match the file exactly, including whitespace`);
    if (count > 1 && !input.replace_all) {
      throw new ToolFailure(`old_string occurs ${count} times in ${shown}; add surrounding context to make it unique, or set replace_all`);
    }
    const after = input.replace_all ? before.split(input.old_string).join(input.new_string) : before.replace(input.old_string, () => input.new_string);
    writeRegular(file, shown, after);
    return text(`replaced ${input.replace_all ? count : 1} occurrence${count > 1 && input.replace_all ? 's' : ''} in ${shown}`);
  },
});
