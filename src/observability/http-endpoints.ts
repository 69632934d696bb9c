import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { HostPort } from '../net/host-port.js';
import {
  HttpConnectionLimiter,
  TIMEOUT_CHECK_INTERVAL_MS,
  type HttpLimits,
  type HttpRefusal,
} from './http-limits.js';
import { MetricsRenderer } from './metrics-renderer.js';

/** Returns undefined when ready, or the reason it is not. */
export type ReadinessProbe = () => string | undefined;

/** Probes and scrapes are one short request each: tight limits, few connections. */
export const ENDPOINT_LIMITS: HttpLimits = {
  headersTimeoutMs: 3_000,
  requestTimeoutMs: 5_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxInFlightPerSocket: 4,
  maxUnreadResponseBytes: 1024 * 1024,
  maxConnections: 256,
};

/** The kubelet's probes must get through hundreds of hostile sockets, which the header timeout reaps. */
export const HEALTH_LIMITS: HttpLimits = { ...ENDPOINT_LIMITS, maxConnections: 1024 };

/** How long one /metrics rendering serves later scrapes. */
export const METRICS_RENDER_INTERVAL_MS = 1_000;

export type RefusalCounter = (reason: HttpRefusal) => void;

function listen(server: Server, at: HostPort): Promise<HostPort> {
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

function boundedServer(limits: HttpLimits, onRefused: RefusalCounter): Server {
  const server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS });
  new HttpConnectionLimiter(server, limits, onRefused);
  return server;
}

/**
 * /healthz (the process serves requests) and /readyz (it should get new peers).
 * `degraded` names a problem worth seeing that must not take the pod out of
 * rotation: /readyz stays 200 and says it.
 */
export function createHealthServer(
  ready: ReadinessProbe,
  degraded: ReadinessProbe = () => undefined,
  onRefused: RefusalCounter = () => {},
): Server {
  return boundedServer(HEALTH_LIMITS, onRefused).on('request', (req, res) => {
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

export function createMetricsServer(registry: Registry, onRefused: RefusalCounter = () => {}): Server {
  const renderer = new MetricsRenderer(registry, METRICS_RENDER_INTERVAL_MS);
  return boundedServer(ENDPOINT_LIMITS, onRefused).on('request', (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    // A connection already closed for abuse gets no rendering.
    if (req.socket.destroyed) return;
    renderer.render().then(
      (body) => res.writeHead(200, { 'content-type': renderer.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
}

export const startEndpoint = listen;
