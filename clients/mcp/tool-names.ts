import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';

/** Every tool of a server, and those that may run as tasks. */
export interface ToolNames {
  all: Set<string>;
  tasks: Set<string>;
}

/**
 * Notes each tool's name as it is registered on `mcp`, so that what the spec guard knows is
 * what the server serves (a hand-kept list once missed agentd_steer, which was then refused
 * as an unknown tool). The SDK offers no listing of registered tools outside its request handler.
 */
export function recordToolNames(mcp: McpServer): ToolNames {
  const names: ToolNames = { all: new Set(), tasks: new Set() };
  const registerTool = mcp.registerTool.bind(mcp) as (name: string, ...rest: unknown[]) => RegisteredTool;
  mcp.registerTool = ((name: string, ...rest: unknown[]) => {
    names.all.add(name);
    return registerTool(name, ...rest);
  }) as McpServer['registerTool'];
  const tasks = mcp.experimental.tasks;
  const registerToolTask = tasks.registerToolTask.bind(tasks) as (name: string, ...rest: unknown[]) => RegisteredTool;
  tasks.registerToolTask = ((name: string, ...rest: unknown[]) => {
    names.all.add(name);
    names.tasks.add(name);
    return registerToolTask(name, ...rest);
  }) as typeof tasks.registerToolTask;
  return names;
}
