import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { HostPort } from '../config/cluster-options.js';

/** Returns undefined when ready, or the reason it is not. */
export type ReadinessProbe = () => string | undefined;

const ENDPOINT_TIMEOUT_MS = 5_000;

function listen(server: Server, at: HostPort): Promise<HostPort> {
  server.headersTimeout = ENDPOINT_TIMEOUT_MS;
  server.requestTimeout = ENDPOINT_TIMEOUT_MS;
  server.maxConnections = 256;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host || undefined, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error('no TCP address'));
      resolve({ host: address.address, port: address.port });
    });
  });
}

/**
 * /healthz (the process serves requests) and /readyz (it should get new peers).
 * `degraded` names a problem worth seeing that must not take the pod out of
 * rotation: /readyz stays 200 and says it.
 */
export function createHealthServer(
  ready: ReadinessProbe,
  degraded: ReadinessProbe = () => undefined,
): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const reason = ready();
      const problem = reason === undefined ? degraded() : undefined;
      if (reason === undefined)
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end(problem === undefined ? 'ready\n' : `ready; degraded: ${problem}\n`);
      else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${reason}\n`);
    } else {
      res.writeHead(404).end();
    }
  });
}

export function createMetricsServer(registry: Registry): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
}

export const startEndpoint = listen;
