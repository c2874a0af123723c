// A session MCP server fixture: `ok` answers, `crash` kills the server mid-call.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const server = new McpServer({ name: 'crash-on-call', version: '1.0.0' });
server.registerTool('ok', { description: 'Answers ok' }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
server.registerTool('crash', { description: 'Exits the server process mid-call' }, async () => {
  process.exit(3);
});
await server.connect(new StdioServerTransport());
