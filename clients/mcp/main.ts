import { InMemoryTaskMessageQueue } from '@modelcontextprotocol/sdk/experimental/tasks/stores/in-memory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { DaemonLink, socketConnector } from '../lib/index.js';
import { startStdioCommand } from '../lib/stdio-command.js';
import { PermissionAsker } from './permissions.js';
import { registerPromptTools } from './prompt.js';
import { registerResources } from './resources.js';
import { SpecGuardTransport } from './spec-guard.js';
import { TurnTaskStore } from './task-store.js';
import { recordToolNames } from './tool-names.js';
import { explainError, registerTools } from './tools.js';

const USAGE = `usage: agentd mcp [--home DIR]

An MCP server over stdio that drives agentd sessions (starting the daemon when none
runs). Configure it in an MCP host as: {"command": "agentd", "args": ["mcp", "--home", "/home/you/.agentd"]}.

Tools: agentd_create_session, agentd_prompt (also as an MCP task),
agentd_answer_permission, agentd_read_events, agentd_list_sessions, agentd_interrupt,
agentd_steer (input for the running turn).
Resources: agentd://sessions/{sessionId}/events (readable, subscribable).
Data dir: --home DIR, else $AGENTD_HOME, else ~/.agentd. MCP hosts start servers with
a minimal environment: store the API key in the vault (agentd vault set ANTHROPIC_API_KEY)
and the daemon this starts finds it there. A daemon over the network instead:
AGENTD_REMOTE=wss://host:port with AGENTD_TOKEN (or AGENTD_TOKEN_FILE) in the env.
`;

/**
 * `agentd mcp`. Stdout carries MCP frames and nothing else, so every diagnostic goes
 * to stderr, and stray console output is rerouted there too. When the daemon goes
 * away the server stays up and reconnects on its next call (starting the daemon if
 * none runs); it exits when the host closes its stdin. Permission questions of the
 * sessions it drives go to the host's user by elicitation when the host offers it.
 */
export async function run(argv: string[], version: string): Promise<number> {
  const stop = startStdioCommand('mcp', argv, USAGE);
  if (stop !== undefined) return stop;
  const log = (message: string) => process.stderr.write(`agentd mcp: ${message}\n`);

  // An MCP host keeps its server for its whole life: the link is made on first use and
  // again after the daemon went away. Reconnections nobody waits for (resource
  // subscriptions) do not start a daemon; a tool call does, unless it was stopped on purpose.
  // Questions come only once connected, when the asker (which needs the server) exists.
  let asker: PermissionAsker | undefined;
  const link = new DaemonLink({
    clientName: 'agentd mcp',
    connector: socketConnector({ clientName: 'agentd-mcp', clientVersion: version }),
    onPermissionRequest: (question, withdrawn) => (asker ? asker.answer(question, withdrawn) : Promise.reject(new Error('agentd mcp is starting'))),
    autostartInBackground: false,
  });
  const taskStore = new TurnTaskStore(link);
  const mcp = new McpServer(
    { name: 'agentd', title: 'agentd', version },
    {
      instructions:
        'agentd runs tool-using agent sessions in a local daemon. Create a session with agentd_create_session, ' +
        'give it work with agentd_prompt (waits for the answer), inspect what it did with agentd_read_events, ' +
        'steer a running turn with agentd_steer and stop it with agentd_interrupt.',
      // Tasks (MCP 2025-11-25): a prompt's turn as a task the host polls, kept in the daemon's log.
      capabilities: { tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
      taskStore,
      // Requests of a task (a permission question) wait here for the host's tasks/result.
      taskMessageQueue: new InMemoryTaskMessageQueue(),
    },
  );
  const toolNames = recordToolNames(mcp);
  const permissions = new PermissionAsker(mcp.server, (sessionId) => taskStore.runningTaskOf(sessionId));
  asker = permissions;
  let connected = false;
  link.onState((state) => {
    if (state.kind === 'connected') log('connected to the daemon');
    else if (connected && state.kind !== 'closed') log('lost the daemon connection; reconnecting');
    connected = state.kind === 'connected';
  });
  registerTools(mcp, link);
  const transport = new SpecGuardTransport(new StdioServerTransport(), toolNames);
  registerPromptTools(mcp, {
    link,
    asker: permissions,
    asksForTask: (id) => transport.asksForTask(id),
    hostCanElicit: () => mcp.server.getClientCapabilities()?.elicitation !== undefined,
  });
  const resources = registerResources(mcp, link, log);
  // The tool set never changes: no tools/list_changed will come, so none is promised (the SDK's default is true).
  mcp.server.registerCapabilities({ tools: { listChanged: false } });

  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.stdin.once('end', stop);
    process.stdin.once('close', stop);
    // EPIPE: the host is gone; stop rather than die of an unhandled 'error'.
    process.stdout.on('error', stop);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    transport.onclose = stop;
  });
  await mcp.connect(transport);
  // Connect (and start the daemon) now, so that the first tool call does not wait for it.
  link.client().catch((error: unknown) => log(explainError(error)));
  await stopped;
  resources.close();
  taskStore.close();
  await link.close();
  await mcp.close().catch(() => undefined);
  // Whatever may still hold the event loop (a daemon request in flight), the host is gone.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}
