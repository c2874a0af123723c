import { connect, createServer } from 'node:net';

/**
 * Serves the credential proxy's unix socket on a loopback port inside the sandbox, so
 * tools see an ordinary base URL (AGENTD_PROXY) while the sandbox has no other way out.
 * Resolves with that base URL.
 */
export async function forwardProxy(proxy: { socket: string; port: number }): Promise<string> {
  const server = createServer((inbound) => {
    const outbound = connect(proxy.socket);
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close);
    outbound.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(proxy.port, '127.0.0.1', () => resolve());
  });
  server.unref();
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : proxy.port;
  return `http://127.0.0.1:${port}`;
}
