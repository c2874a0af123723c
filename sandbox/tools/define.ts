import type { ZodType } from 'zod';
import * as z from 'zod/mini';
import type { ToolContent } from '../host/protocol.js';

/** What a built-in tool returns; `timeout` marks a result cut short by the tool's own time limit. */
export interface ToolOutput {
  content: ToolContent[];
  isError?: boolean;
  timedOut?: boolean;
}

/** Per-sandbox state shared by the built-in tools inside the host. */
export interface ToolContext {
  workspace: string; // realpath of the workspace
  ripgrep: string | null; // absolute path of rg, or null to use the built-in search
  signal: AbortSignal;
  shell: Shell;
}

export interface ShellRun {
  output: string;
  exitCode: number | null;
  ended: 'exited' | 'timeout' | 'interrupted' | 'shell_exited';
  notes: string[];
  /** Processes the command started that were to be killed and were still alive after trying. */
  unkilled: number;
  /** The command ran the sandbox into its process or memory limit (the notes say which). */
  limitReached: boolean;
}

/** The sandbox's persistent shell (one per sandbox; see shell.ts). */
export interface Shell {
  run(command: string, timeoutMs: number, signal: AbortSignal): Promise<ShellRun>;
}

const TOOL_FAILURE = Symbol.for('agentd.ToolFailure');

/**
 * A failure the model should read: becomes a tool result with isError, never a crash. Tools
 * loaded on first use are bundled apart from the host (each with its own copy of this class),
 * so `instanceof` goes by a brand rather than by the class.
 */
export class ToolFailure extends Error {
  readonly [TOOL_FAILURE] = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TOOL_FAILURE] === true;
  }
}

/** A tool's input schema: classic zod or zod/mini, each parsing with its own copy of zod (see host/main.ts). */
type Schema = ZodType | z.ZodMiniType;

export interface BuiltinTool<S extends Schema = Schema> {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  input: S;
  handler: (input: z.infer<S>, ctx: ToolContext) => Promise<ToolOutput>;
}

export function defineTool<S extends Schema>(tool: {
  name: string;
  description: string;
  input: S;
  handler: (input: z.infer<S>, ctx: ToolContext) => Promise<ToolOutput>;
}): BuiltinTool<S> {
  let inputSchema: Record<string, unknown> | undefined;
  return {
    ...tool,
    // Computed on first use: the host starts faster, and only lists tools when asked.
    get inputSchema() {
      if (!inputSchema) {
        const { $schema: _ignored, ...schema } = z.toJSONSchema(tool.input, { unrepresentable: 'any' }) as Record<string, unknown>;
        inputSchema = schema;
      }
      return inputSchema;
    },
  };
}

export function text(value: string, isError = false): ToolOutput {
  return { content: [{ type: 'text', text: value }], isError };
}

/** Keeps the head and tail of an over-long text and says how much was cut. */
export function capText(value: string, max: number): string {
  if (value.length <= max) return value;
  const half = Math.floor(max / 2);
  const omitted = value.length - 2 * half;
  return `${value.slice(0, half)}\n\n[... output truncated: ${omitted} characters omitted ...]\n\n${value.slice(value.length - half)}`;
}
