/** `agentd acp` as an editor runs it: the real command over stdio, driven by the ACP SDK's client side. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough, Readable, Writable } from 'node:stream';
import * as acp from '@agentclientprotocol/sdk';
import type { AgentdClient } from '../../clients/lib/index.js';
import { startAgentRig, type AgentRig } from './agent.js';
import { AGENTD_BIN } from './daemon.js';

export type PermissionAnswer = (request: acp.RequestPermissionRequest) => acp.RequestPermissionResponse;

export interface AcpProcess {
  agent: acp.ClientContext;
  updates: acp.SessionNotification[];
  permissionRequests: acp.RequestPermissionRequest[];
  /** Tool call ids the editor had been told about when each permission request came. */
  announcedAtPermission: string[][];
  answer: PermissionAnswer;
  stdout(): string;
  stderr(): string;
  close(): Promise<number | null>;
}

/** Spawns `agentd acp` for the rig's daemon and connects an ACP client to its stdio. */
export function startAcp(rig: { daemon: { layout: { home: string } } }, options: { home?: string; env?: Record<string, string> } = {}): AcpProcess {
  const child = spawn(process.execPath, [AGENTD_BIN, 'acp'], {
    env: { ...process.env, AGENTD_HOME: options.home ?? rig.daemon.layout.home, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  // Keep a copy of every stdout byte, to check it holds protocol frames only.
  const tee = new PassThrough();
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    tee.write(chunk);
  });
  child.stdout.on('end', () => tee.end());
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const proc: AcpProcess = {
    agent: undefined as unknown as acp.ClientContext,
    updates: [],
    permissionRequests: [],
    announcedAtPermission: [],
    answer: () => ({ outcome: { outcome: 'selected', optionId: 'allow' } }),
    stdout: () => out,
    stderr: () => err,
    async close() {
      child.stdin.end();
      return exited;
    },
  };
  const app = acp
    .client({ name: 'acp-test' })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      proc.updates.push(params);
    })
    .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
      proc.permissionRequests.push(params);
      proc.announcedAtPermission.push(
        proc.updates.flatMap((n) => (n.update.sessionUpdate === 'tool_call' ? [n.update.toolCallId] : [])),
      );
      return proc.answer(params);
    });
  const connection = app.connect(
    acp.ndJsonStream(Writable.toWeb(child.stdin) as WritableStream<Uint8Array>, Readable.toWeb(tee) as ReadableStream<Uint8Array>),
  );
  proc.agent = connection.agent;
  return proc;
}

export async function initialize(proc: AcpProcess): Promise<acp.InitializeResponse> {
  return proc.agent.request(acp.methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
    clientInfo: { name: 'acp-test', version: '0.0.0' },
  });
}

/**
 * Runs `body` with an `agentd acp` of its own, initialized, on the rig's daemon; whatever
 * happens, closing its stdin must then end it with exit code 0.
 */
export async function withAcp(rig: { daemon: { layout: { home: string } } }, body: (proc: AcpProcess, init: acp.InitializeResponse) => Promise<void>): Promise<void> {
  const proc = startAcp(rig);
  try {
    await body(proc, await initialize(proc));
  } finally {
    assert.equal(await proc.close(), 0, proc.stderr());
  }
}

/** A rig for ACP tests, and a client of its daemon that reads what the editor's sessions logged. */
export async function startAcpRig(): Promise<AgentRig & { client: AgentdClient }> {
  const rig = await startAgentRig();
  return Object.assign(rig, { client: await rig.daemon.client() });
}
