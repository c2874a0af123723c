import type { BuiltinTool } from './define.js';

/** A built-in tool, loaded when first called: the host starts without any tool's code. */
export interface ToolEntry {
  name: string;
  load(): Promise<BuiltinTool>;
}

const entry = <T>(name: string, load: () => Promise<T>): ToolEntry => ({ name, load: load as () => Promise<BuiltinTool> });

/**
 * The built-in tools, in the order they are offered to the model. glob and grep are written
 * with classic zod, whose load costs the host about as much as node's own start: loading them
 * on first use keeps that off every sandbox's start.
 */
export const builtinTools: readonly ToolEntry[] = [
  entry('bash', async () => (await import('./bash.js')).bashTool),
  entry('read_file', async () => (await import('./read-file.js')).readFileTool),
  entry('write_file', async () => (await import('./write-file.js')).writeFileTool),
  entry('edit_file', async () => (await import('./edit-file.js')).editFileTool),
  entry('glob', async () => (await import('./glob.js')).globTool),
  entry('grep', async () => (await import('./grep.js')).grepTool),
];
