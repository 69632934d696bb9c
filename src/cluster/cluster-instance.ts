import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { ClusterOptions } from '../config/cluster-options.js';
import type { PeerKey } from '../protocol/peer-id.js';
import type { PeerRegistry } from '../registry/peer-registry.js';
import { createRedisConnections, type RedisConnections } from '../registry/redis/connections.js';
import { RedisKeys } from '../registry/redis/keys.js';
import { RedisRegistryMetrics } from '../registry/redis-registry-metrics.js';
import { RedisRegistry } from '../registry/redis-registry.js';
import type { RemoteDelivery } from '../relay/remote-delivery.js';
import { ClusterMetrics } from './cluster-metrics.js';
import type { WhenWritten } from './frame-assembly-pool.js';
import { DEFAULT_MEMBERSHIP_TIMING, Membership, type MembershipTiming } from './membership.js';
import type { MeshShedRequest } from './mesh-frame.js';
import { DEFAULT_MESH_LIMITS, type MeshLimits } from './mesh-link-options.js';
import { MeshNetwork } from './mesh-network.js';
import { MeshServer } from './mesh-server.js';
import { Reaper } from './reaper.js';

export interface ClusterInstance {
  readonly instanceId: string;
  readonly registry: PeerRegistry;
  readonly remote: RemoteDelivery;
  /** Why this pod is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  /** Live instances with their pod names and the peers each holds (zeros included), from Redis. */
  peersByInstance(): Promise<InstancePeers[]>;
  /** The pod is gone from the Kubernetes API: its instances are reaped now. Resolves with the sessions removed. */
  reapPod(podName: string): Promise<number>;
  /** The pods the Kubernetes headless Service lists (the mesh drops links to pods that left it). */
  updateSiblingPods(pods: ReadonlySet<string>): void;
  /** Asks another instance over the mesh to shed peers; throws when no link to it is up. */
  requestShed(instance: string, request: MeshShedRequest): void;
  close(): Promise<void>;
}

export interface InstancePeers {
  instance: string;
  podName: string;
  peers: number;
}

export interface ClusterInstanceOptions {
  cluster: ClusterOptions;
  logger: Logger;
  metrics: MetricsRegistry;
  deliverLocal: (peer: PeerKey, message: Buffer) => boolean;
  /** The relay's "this turn's writes are out" (lets the mesh reuse frame memory). */
  whenDeliveriesWritten?: WhenWritten;
  /** The rebalancing leader asked this instance to shed peers. */
  onShedRequest?: (request: MeshShedRequest) => void;
  /** Tests: faster or slower timings. */
  membershipTiming?: MembershipTiming;
  meshLimits?: Partial<MeshLimits>;
  /** How long start waits for Redis before returning a not-ready instance that keeps trying. */
  startupTimeoutMs?: number;
}

/** The parts of a running cluster instance, for tests that need to reach inside. */
export interface ClusterInstanceInternals extends ClusterInstance {
  readonly redisRegistry: RedisRegistry;
  /** The registry's Redis connections, for tests that cut them. */
  readonly redisConnections: RedisConnections;
  readonly mesh: MeshNetwork;
  readonly membership: Membership;
  readonly meshPort: number;
}

/**
 * Starts cluster mode: the Redis registry, the mesh listener and links, the
 * heartbeat and the reaper. A new instance id per process start.
 */
export async function startClusterInstance(
  options: ClusterInstanceOptions,
): Promise<ClusterInstanceInternals> {
  const { cluster } = options;
  const instanceId = randomUUID();
  // Every part names its own component once: children of a logger with a component would repeat the key.
  const podLogger = options.logger.child({ instance: instanceId, pod: cluster.podName });
  const logger = podLogger.child({ component: 'cluster' });
  const keys = new RedisKeys(cluster.redis.keyPrefix);
  const connections = createRedisConnections(cluster.redis, `nb-cluster-relay:${cluster.podName}`);
  const clusterMetrics = new ClusterMetrics(options.metrics);
  const registry = new RedisRegistry({
    connections,
    keys,
    instanceId,
    logger: podLogger.child({ component: 'registry' }),
    metrics: new RedisRegistryMetrics(options.metrics),
  });
  const limits = { ...DEFAULT_MESH_LIMITS, ...options.meshLimits };
  const mesh = new MeshNetwork({
    localInstance: instanceId,
    secret: cluster.clusterSecret,
    deliverLocal: options.deliverLocal,
    ...(options.whenDeliveriesWritten ? { whenDeliveriesWritten: options.whenDeliveriesWritten } : {}),
    onNotHere: (peer, instance) => registry.verifyRoute(peer, instance),
    onShedRequest: (request, from) => {
      logger.info({ count: request.count, window_ms: request.windowMs, from }, 'asked to shed peers');
      options.onShedRequest?.(request);
    },
    metrics: clusterMetrics,
    logger: podLogger.child({ component: 'mesh' }),
    limits,
    onUnknownInstance: () => void membership.beat(),
  });
  const server = new MeshServer({
    listen: cluster.meshListen,
    secret: cluster.clusterSecret,
    instanceId,
    maxPayload: limits.maxPayload,
    metrics: clusterMetrics,
    logger: podLogger.child({ component: 'mesh' }),
    accept: (socket, from) => mesh.accept(socket, from),
  });
  const meshPort = await server.start();
  const meshAddress = advertisedAddress(cluster.meshAdvertise, meshPort);
  const timing = options.membershipTiming ?? DEFAULT_MEMBERSHIP_TIMING;
  const reaper = new Reaper({
    store: registry.store,
    instanceId,
    expiryMs: timing.expiryMs,
    logger: podLogger.child({ component: 'reaper' }),
    metrics: clusterMetrics,
  });
  const membership = new Membership({
    store: registry.store,
    instanceId,
    meshAddress,
    podName: cluster.podName,
    registry,
    reaper,
    logger: podLogger.child({ component: 'membership' }),
    metrics: clusterMetrics,
    onMembers: (members) => mesh.updateMembers(members),
    onExpired: (instance) => mesh.forget(instance),
    timing,
  });
  await registry.start(options.startupTimeoutMs ?? 5_000);
  await membership.start();
  logger.info(
    { mesh_listen: `${cluster.meshListen.host}:${meshPort}`, mesh_advertise: meshAddress },
    'cluster instance started',
  );

  let closed = false;
  const notReadyReason = (): string | undefined =>
    closed ? 'closed' : (registry.notReadyReason() ?? membership.notReadyReason());
  return {
    instanceId,
    registry,
    redisRegistry: registry,
    redisConnections: connections,
    remote: mesh,
    mesh,
    membership,
    meshPort,
    notReadyReason,
    async peersByInstance() {
      const counts = await membership.peerCounts();
      const members = membership.members;
      return [...counts].map(([instance, peers]) => ({
        instance,
        podName: members.get(instance)?.podName ?? '',
        peers,
      }));
    },
    async reapPod(podName) {
      if (podName === cluster.podName) return 0;
      const instances = new Set(membership.instancesOfPod(podName));
      const recorded = await registry.store.instanceOfPod(podName);
      if (recorded) instances.add(recorded);
      instances.delete(instanceId);
      let removed = 0;
      for (const instance of instances) {
        mesh.forget(instance);
        removed += (await reaper.reap(instance, 'pod_deleted')) ?? 0;
      }
      // Refresh the member list now, so peer counts and the mesh stop naming the dead.
      if (instances.size > 0) await membership.beat();
      return removed;
    },
    updateSiblingPods: (pods) => mesh.updateSiblingPods(pods),
    requestShed: (instance, request) => mesh.requestShed(instance, request),
    async close() {
      if (closed) return;
      closed = true;
      await membership.close();
      // Whatever the relay did not unregister goes now (announced offline), and we leave the member list.
      await reaper.reap(instanceId, 'shutdown').catch((err: unknown) => {
        logger.warn({ err }, 'could not remove this instance from redis on shutdown');
      });
      mesh.close();
      await server.close();
      await registry.close();
      logger.info('cluster instance stopped');
    },
  };
}

/** The advertised host:port, with the bound port filled in when the configuration left it open (0). */
function advertisedAddress(advertise: string, boundPort: number): string {
  const split = advertise.lastIndexOf(':');
  if (split < 0) return `${advertise}:${boundPort}`;
  const port = advertise.slice(split + 1);
  return port === '0' || port === '' ? `${advertise.slice(0, split)}:${boundPort}` : advertise;
}
