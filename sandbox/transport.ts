import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * MCP over the stdio of a child the provider spawned itself (the SDK's StdioClientTransport
 * spawns its own child and merges in parts of our environment, which a sandbox must not get).
 */
export class ChildProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer();
  private closed = false;

  private readonly stdin: Writable;
  private readonly stdout: Readable;

  constructor(private readonly child: ChildProcess) {
    if (!child.stdin || !child.stdout) throw new Error('the child needs piped stdin and stdout');
    this.stdin = child.stdin;
    this.stdout = child.stdout;
  }

  async start(): Promise<void> {
    this.stdout.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = this.buffer.readMessage();
        } catch (error) {
          this.onerror?.(error as Error);
          continue;
        }
        if (!message) break;
        this.onmessage?.(message);
      }
    });
    this.stdin.on('error', (error) => this.onerror?.(error));
    this.child.on('exit', () => this.finish());
    this.stdout.on('close', () => this.finish());
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer.clear();
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed || !this.stdin.writable) {
        reject(new Error('the sandbox host is not running'));
        return;
      }
      this.stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Ends the host's stdin, which asks it to shut down; the owner escalates if it does not. */
  async close(): Promise<void> {
    if (!this.stdin.destroyed) this.stdin.end();
    this.finish();
  }
}
