import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  CancelTaskRequestSchema,
  ErrorCode as McpErrorCode,
  GetTaskPayloadRequestSchema,
  GetTaskRequestSchema,
  isJSONRPCRequest,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { RESOURCE_NOT_FOUND, isEventsUri } from './resources.js';

/** Requests whose params the SDK would fail to parse with -32603 and a zod dump. */
const PARAMS: Record<string, z.ZodType> = {
  'tools/call': CallToolRequestSchema,
  'resources/read': ReadResourceRequestSchema,
  'resources/subscribe': SubscribeRequestSchema,
  'resources/unsubscribe': UnsubscribeRequestSchema,
  'tasks/get': GetTaskRequestSchema,
  'tasks/result': GetTaskPayloadRequestSchema,
  'tasks/cancel': CancelTaskRequestSchema,
};

type Refusal = { code: number; message: string; data?: Record<string, unknown> };

/**
 * Sits between the stdio transport and the SDK's server and answers, as the MCP spec
 * asks, what the SDK (1.32) answers otherwise: a request with missing or malformed
 * params gets -32602 naming the field (not -32603 with a zod dump), an unknown tool
 * -32602 (not an `isError` result), and a resource that does not exist -32002, the one
 * "not found" code (the SDK uses -32602 for URIs no template matches), and a task asked
 * of a tool that runs none -32601 (the SDK runs it plainly). It also notes
 * which `tools/call` requests ask for a task, which the SDK does not tell a tool.
 */
export class SpecGuardTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private readonly taskCalls = new Set<RequestId>();

  constructor(
    private readonly inner: Transport,
    /** Every tool, and those that may run as tasks. */
    private readonly tools: { all: ReadonlySet<string>; tasks: ReadonlySet<string> },
  ) {}

  /** Whether this `tools/call` request asked for a task (`params.task`). */
  asksForTask(requestId: RequestId): boolean {
    return this.taskCalls.has(requestId);
  }

  async start(): Promise<void> {
    this.inner.onmessage = (message, extra) => this.receive(message, extra);
    this.inner.onclose = () => this.onclose?.();
    this.inner.onerror = (error) => this.onerror?.(error);
    await this.inner.start();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    // A response (a result or an error) ends its request.
    if ('id' in message && !('method' in message) && message.id !== undefined) this.taskCalls.delete(message.id);
    await this.inner.send(message, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private receive(message: JSONRPCMessage, extra?: MessageExtraInfo): void {
    if (isJSONRPCRequest(message)) {
      const refusal = this.refusal(message.method, message);
      if (refusal) {
        this.inner.send({ jsonrpc: '2.0', id: message.id, error: refusal }).catch((error: Error) => this.onerror?.(error));
        return;
      }
      if (message.method === 'tools/call' && message.params?.task !== undefined) this.taskCalls.add(message.id);
    }
    this.onmessage?.(message, extra);
  }

  private refusal(method: string, request: unknown): Refusal | undefined {
    const schema = PARAMS[method];
    if (!schema) return undefined;
    const parsed = schema.safeParse(request);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.');
      return { code: McpErrorCode.InvalidParams, message: `invalid ${method} request: ${field || 'params'}: ${issue.message}`, data: { field } };
    }
    const params = (parsed.data as { params: Record<string, unknown> }).params;
    if (method === 'tools/call' && !this.tools.all.has(String(params.name))) {
      return { code: McpErrorCode.InvalidParams, message: `Unknown tool: ${String(params.name)}`, data: { tool: params.name } };
    }
    // The spec: a tool whose taskSupport is forbidden (the default) called as a task gets -32601.
    if (method === 'tools/call' && params.task !== undefined && !this.tools.tasks.has(String(params.name))) {
      return { code: McpErrorCode.MethodNotFound, message: `${String(params.name)} does not run as a task (taskSupport: forbidden); call it plainly`, data: { tool: params.name } };
    }
    if (method === 'resources/read' || method === 'resources/subscribe') {
      const uri = String(params.uri);
      if (!isEventsUri(uri)) return { code: RESOURCE_NOT_FOUND, message: `Resource not found: ${uri}`, data: { uri } };
    }
    return undefined;
  }
}
