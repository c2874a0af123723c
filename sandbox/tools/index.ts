import { bashTool } from './bash.js';
import type { BuiltinTool } from './define.js';
import { editFileTool } from './edit-file.js';
import { globTool } from './glob.js';
import { grepTool } from './grep.js';
import { readFileTool } from './read-file.js';
import { writeFileTool } from './write-file.js';

/** The built-in tools, in the order they are offered to the model. */
export const builtinTools: readonly BuiltinTool[] = [bashTool, readFileTool, writeFileTool, editFileTool, globTool, grepTool] as BuiltinTool[];
