// Serves a prom-client registry as Prometheus text on GET /metrics: the
// control plane and the agent each have one (--metrics-listen), off by default.
import { createServer } from 'node:http';
import type { Registry } from 'prom-client';

export interface MetricsEndpoint {
  /** host:port it listens on (port 0 picks one). */
  address: string;
  close(): Promise<void>;
}

export async function serveMetrics(registry: Registry, listen: string): Promise<MetricsEndpoint> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Grid serves only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot collect metrics: ${err.message}\n`),
    );
  });
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at).replace(/^\[|\]$/g, '') || '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen.slice(at + 1)), host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
