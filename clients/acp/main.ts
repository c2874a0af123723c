/**
 * `agentd acp`: an Agent Client Protocol agent over stdio, so ACP editors (Zed and
 * others) use agentd as their agent. A thin client of the daemon, which it starts
 * when none runs; sessions outlive the editor.
 *
 * Stdout carries ACP frames only: everything else goes to stderr.
 */
import { Readable, Writable } from 'node:stream';
import * as acp from '@agentclientprotocol/sdk';
import { startStdioCommand } from '../lib/stdio-command.js';
import { createAgent } from './agent.js';

const USAGE = `usage: agentd acp

Speaks the Agent Client Protocol (newline-delimited JSON-RPC) on stdin/stdout, for
editors such as Zed. Sessions live in the agentd daemon of $AGENTD_HOME (default
~/.agentd), started when none runs, or over the network with AGENTD_REMOTE=wss://host:port
and AGENTD_TOKEN (or AGENTD_TOKEN_FILE) in the env. Diagnostics go to stderr.
`;

export async function run(argv: string[], version: string): Promise<number> {
  const stop = startStdioCommand('acp', argv, USAGE);
  if (stop !== undefined) return stop;
  const diag = (message: string) => process.stderr.write(`agentd acp: ${message}\n`);

  const { app, shutdown } = createAgent({ version, diag });
  const stream = acp.ndJsonStream(Writable.toWeb(process.stdout) as WritableStream<Uint8Array>, Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>);
  const connection = app.connect(stream);
  await connection.closed;
  // The editor left: let go of the daemon; its sessions (and any running turn) carry on.
  await shutdown();
  return 0;
}
