import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { HmacTokenValidator } from './auth/hmac-token.js';
import type { ClusterInstance } from './cluster/cluster-instance.js';
import { formatHost, type HostPort } from './net/host-port.js';
import type { RelayConfig } from './config/relay-config.js';
import type { KubernetesSettings } from './k8s/k8s-settings.js';
import type { Logger } from './observability/logger.js';
import { createHealthServer, createMetricsServer, startEndpoint } from './observability/http-endpoints.js';
import { RelayMetrics } from './relay/relay-metrics.js';
import type { KubernetesIntegration } from './k8s/kubernetes.js';
import type { PeerKey } from './protocol/peer-id.js';
import { MemoryRegistry } from './registry/memory-registry.js';
import type { PeerRegistry } from './registry/peer-registry.js';
import { AbuseGuard } from './relay/abuse-guard.js';
import { ClientAddressResolver } from './relay/client-address.js';
import { Relay } from './relay/relay.js';
import { RelayListener } from './relay/relay-listener.js';
import { TlsReloader } from './relay/tls-reloader.js';
import type { RemoteDelivery } from './relay/remote-delivery.js';
import { DEFAULT_SEND_QUEUE_LIMITS } from './relay/send-queue.js';
import { CoarseClock } from './relay/coarse-clock.js';
import { WriteBatcher } from './relay/write-batcher.js';
import { StunServer } from './stun/stun-server.js';

export interface RunningRelay {
  readonly relay: Relay;
  readonly relayAddress: HostPort;
  readonly healthAddress: HostPort;
  readonly metricsAddress: HostPort;
  readonly metrics: Registry;
  /** Re-reads the live limits (SIGHUP); a bad file keeps the old ones and throws. */
  reloadLimits(): void;
  /** Graceful drain and exit of every listener; resolves when done. */
  stop(): Promise<void>;
}

export interface StartRelayOptions {
  /** The Kubernetes integration's settings; used in cluster mode only. */
  k8s?: KubernetesSettings;
}

/** The registry backend and what else the mode brings (mesh, readiness of the cluster). */
interface Backend {
  readonly registry: PeerRegistry;
  readonly remote?: RemoteDelivery;
  readonly cluster?: ClusterInstance;
  notReadyReason(): string | undefined;
  close(): Promise<void>;
}

/** What the cluster instance calls back into the relay, which exists only after the backend. */
interface RelayCallbacks {
  deliverLocal(peer: PeerKey, message: Buffer): boolean;
  shed(count: number, windowMs: number): void;
  /** After this turn's session writes: did every socket take all it was given? */
  whenWritten(callback: (allWritten: boolean) => void): void;
}

async function createBackend(
  config: RelayConfig,
  logger: Logger,
  metrics: Registry,
  callbacks: RelayCallbacks,
): Promise<Backend> {
  if (!config.cluster) {
    const registry = new MemoryRegistry({
      onListenerError: (err) => logger.error({ err }, 'peer event listener failed'),
    });
    return { registry, notReadyReason: () => undefined, close: () => registry.close() };
  }
  const { startClusterInstance } = await import('./cluster/cluster-instance.js');
  const cluster = await startClusterInstance({
    cluster: config.cluster,
    logger,
    metrics,
    deliverLocal: callbacks.deliverLocal,
    whenDeliveriesWritten: callbacks.whenWritten,
    onShedRequest: ({ count, windowMs }) => callbacks.shed(count, windowMs),
  });
  return {
    registry: cluster.registry,
    remote: cluster.remote,
    cluster,
    notReadyReason: () => cluster.notReadyReason(),
    close: () => cluster.close(),
  };
}

export async function startRelay(
  config: RelayConfig,
  logger: Logger,
  options: StartRelayOptions = {},
): Promise<RunningRelay> {
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const relayMetrics = new RelayMetrics(metrics);

  // The mesh may deliver before the relay exists; it answers "not here" until then.
  const relayRef: { current?: Relay } = {};
  const writeBatcher = new WriteBatcher();
  const backend = await createBackend(config, logger, metrics, {
    deliverLocal: (peer, message) => relayRef.current?.deliverLocal(peer, message) ?? false,
    shed: (count, windowMs) => void relayRef.current?.shed(count, windowMs),
    whenWritten: (callback) => writeBatcher.whenWritten(callback),
  });
  const relay = new Relay({
    instanceUrl: config.exposedAddress,
    registry: backend.registry,
    metrics: relayMetrics,
    logger,
    maxSubscriptionsPerSession: config.limits.maxSubscriptionsPerPeer,
    ...(backend.remote ? { remote: backend.remote } : {}),
  });
  relayRef.current = relay;
  const abuse = new AbuseGuard(config.limits);
  const reloadLimits = (): void => {
    const limits = config.reloadLimits();
    abuse.update(limits);
    relay.setMaxSubscriptionsPerSession(limits.maxSubscriptionsPerPeer);
    logger.info({ limits }, 'limits reloaded');
  };

  const clock = new CoarseClock();
  const tlsPair = config.tls
    ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }
    : undefined;
  const listener = new RelayListener({
    listen: config.listen,
    ...(tlsPair ? { tls: tlsPair } : {}),
    clientAddress: new ClientAddressResolver(config.trustedProxies),
    maxConnections: config.maxConnections,
    onRefused: (reason) => relayMetrics.httpRefusals.labels('relay', reason).inc(),
    abuse,
    onAbuse: (reason) => relayMetrics.abuseRefusals.labels(reason).inc(),
    session: {
      host: relay,
      validator: new HmacTokenValidator(config.authSecret),
      timings: {
        handshakeTimeoutMs: config.handshakeTimeoutMs,
        healthCheckIntervalMs: config.healthCheckIntervalMs,
        healthCheckTimeoutMs: config.healthCheckTimeoutMs,
      },
      queueLimits: { ...DEFAULT_SEND_QUEUE_LIMITS, maxDataBytes: config.sendQueueBytes },
      metrics: relayMetrics,
      logger,
      now: Date.now,
      coarseNow: clock.now,
      writeBatcher,
    },
  });

  let draining = false;
  const notReadyReason = (): string | undefined => {
    if (draining) return 'draining';
    if (!listener.accepting) return 'relay listener not accepting';
    return backend.notReadyReason();
  };

  const relayAddress = await listener.start();
  const tlsReloader =
    config.tls && tlsPair
      ? new TlsReloader(
          {
            ...config.tls,
            intervalMs: config.tlsReloadIntervalMs,
            apply: (pair) => listener.setCertificate(pair),
            onReloaded: () => logger.info({ cert: config.tls?.certFile }, 'TLS certificate reloaded'),
            onError: (err) =>
              logger.error(
                { err, cert: config.tls?.certFile },
                'new TLS certificate refused; keeping the old one',
              ),
            onChecked: (result) => relayMetrics.tlsReloadChecks.labels(result).inc(),
          },
          tlsPair,
        )
      : undefined;
  let k8s: KubernetesIntegration | undefined;
  if (options.k8s && backend.cluster) {
    const { startClusterOnK8s } = await import('./k8s-wiring.js');
    k8s = await startClusterOnK8s({
      settings: options.k8s,
      cluster: backend.cluster,
      relay,
      logger,
      metrics,
    });
  } else if (options.k8s) {
    logger.info('running in Kubernetes without Redis: standalone, so no sibling discovery or rebalancing');
  }
  const metricsServer = createMetricsServer(metrics, (reason) =>
    relayMetrics.httpRefusals.labels('metrics', reason).inc(),
  );
  const metricsAddress = await startEndpoint(metricsServer, {
    host: config.metricsHost,
    port: config.metricsPort,
  });

  let stun: StunServer | undefined;
  if (config.stun) {
    // NB_STUN_LOG_LEVEL, as NetBird: the STUN server may log more (or less) than the relay.
    const stunLog = logger.child({ component: 'stun' }, { level: config.stun.logLevel });
    stun = new StunServer({
      host: config.listen.host.includes(':') || config.listen.host === '' ? '::' : config.listen.host,
      ports: [...config.stun.ports],
      onRequest: () => relayMetrics.stunRequests.inc(),
      onMalformed: (reason) => relayMetrics.stunMalformed.labels(reason).inc(),
      onError: (err) => stunLog.warn({ err }, 'STUN socket error'),
    });
    await stun.start();
    stunLog.info({ ports: config.stun.ports }, 'STUN server listening');
  }

  // A broken API watch is reported, not made a reason to refuse peers: the data path does not need
  // the API, and every pod would go unready at once during an API server outage.
  const healthServer = createHealthServer(
    notReadyReason,
    () => k8s?.notReadyReason(),
    (reason) => relayMetrics.httpRefusals.labels('health', reason).inc(),
  );
  // Readiness is served last: a pod that reports ready has bound every listener (a port taken
  // later would end the process after it was put in rotation).
  const healthAddress = await startEndpoint(healthServer, config.healthListen);
  logger.info(
    {
      listen: `${relayAddress.host}:${relayAddress.port}`,
      exposed_address: config.exposedAddress,
      mode: config.cluster ? 'cluster' : 'standalone',
      k8s: k8s !== undefined,
      instance: backend.registry.instanceId,
      tls: Boolean(config.tls),
      url: `${config.tls ? 'rels' : 'rel'}://${formatHost(relayAddress.host)}:${relayAddress.port}`,
      get_token: 'nb-cluster-relay token --secret "$NB_AUTH_SECRET" --ttl 24h',
      health: `http://${formatHost(healthAddress.host)}:${healthAddress.port}/readyz`,
      metrics: `http://${formatHost(metricsAddress.host)}:${metricsAddress.port}/metrics`,
    },
    'relay listening',
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      listener.stopAccepting();
      tlsReloader?.stop();
      // Hand the Lease over and stop rebalancing before this pod's peers go.
      await k8s?.close();
      logger.info({ peers: relay.peerCount, window_ms: config.drainWindowMs }, 'draining');
      await relay.drain(config.drainWindowMs);
      relay.close();
      clock.stop();
      listener.destroyAll();
      await stun?.stop();
      await backend.close();
      await Promise.all([closeServer(healthServer), closeServer(metricsServer)]);
      logger.info('relay stopped');
    })();
    return stopping;
  };

  return { relay, relayAddress, healthAddress, metricsAddress, metrics, reloadLimits, stop };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
