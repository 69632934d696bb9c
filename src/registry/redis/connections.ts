import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  Cluster,
  Redis,
  type ClusterNode as RedisClusterNode,
  type RedisOptions as IoRedisOptions,
} from 'ioredis';
import type { RedisOptions } from '../../config/cluster-options.js';
import type { HostPort } from '../../net/host-port.js';
import type { RedisClient } from './scripts.js';

/** How often a Redis Cluster client re-reads the slot map: a failover is noticed within this. */
export const CLUSTER_SLOTS_REFRESH_MS = 2_000;

/** Reconnect fast: the cluster must converge within seconds of Redis coming back. */
const retryStrategy = (attempt: number): number => Math.min(50 * attempt, 500);

/** Options shared by every connection: fail fast instead of queueing while Redis is away. */
const commonOptions: IoRedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2_000,
  connectTimeout: 2_000,
  retryStrategy,
  // A command whose connection died may or may not have run; the registry
  // reconciles after the reconnect instead of running it twice blindly.
  autoResendUnfulfilledCommands: false,
  lazyConnect: true,
};

/** The two connections the registry needs: commands, and the event subscription. */
export interface RedisConnections {
  command: RedisClient;
  subscriber: Redis;
  /** Master nodes to scan (each a client) — one entry unless Redis Cluster. */
  scanTargets(): Redis[];
  isCluster: boolean;
}

export function createRedisConnections(options: RedisOptions, connectionName: string): RedisConnections {
  // Credentials and TLS of the data nodes (in URL mode the URL's own credentials win:
  // ioredis fills options from the URL first).
  const tls = tlsOptions(options);
  const dataNodeOptions: IoRedisOptions = {
    ...commonOptions,
    connectionName,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(tls && options.url === undefined ? { tls } : {}),
  };
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    return createClusterConnections(options.clusterNodes, dataNodeOptions);
  }
  if (options.sentinels && options.sentinels.length > 0) {
    const sentinelOptions: IoRedisOptions = {
      ...dataNodeOptions,
      sentinels: options.sentinels.map(({ host, port }) => ({ host, port })),
      name: options.sentinelName ?? 'mymaster',
      sentinelRetryStrategy: retryStrategy,
      ...(options.sentinelPassword !== undefined ? { sentinelPassword: options.sentinelPassword } : {}),
      // `tls` alone is ignored in Sentinel mode: these two put both hops (Sentinels, primary) on TLS.
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    };
    const command = new Redis(sentinelOptions);
    const subscriber = new Redis({ ...sentinelOptions, enableOfflineQueue: true, commandTimeout: undefined });
    return { command, subscriber, scanTargets: () => [command], isCluster: false };
  }
  if (!options.url) throw new Error('cluster mode needs a Redis URL, sentinels or cluster nodes');
  // rediss:// turns TLS on; a CA file only adds what to verify the server with.
  const urlOptions: IoRedisOptions = {
    ...dataNodeOptions,
    ...(tls && options.url.startsWith('rediss://') ? { tls } : {}),
  };
  const command = new Redis(options.url, urlOptions);
  const subscriber = new Redis(options.url, {
    ...urlOptions,
    enableOfflineQueue: true,
    commandTimeout: undefined,
  });
  return { command, subscriber, scanTargets: () => [command], isCluster: false };
}

/** TLS options of every connection, or undefined without TLS (a rediss:// URL brings its own). */
function tlsOptions(options: RedisOptions): ConnectionOptions | undefined {
  if (!options.tls && options.tlsCaFile === undefined) return undefined;
  return options.tlsCaFile !== undefined ? { ca: readFileSync(options.tlsCaFile) } : {};
}

function createClusterConnections(nodes: readonly HostPort[], nodeOptions: IoRedisOptions): RedisConnections {
  const startupNodes: RedisClusterNode[] = nodes.map(({ host, port }) => ({ host, port }));
  const command = new Cluster(startupNodes, {
    enableOfflineQueue: false,
    clusterRetryStrategy: retryStrategy,
    // A pod that sends nothing to a failed master's slots would otherwise never re-read the slot map,
    // and never learn that the promoted replica may lack writes of its (the registry resyncs on it).
    slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
    lazyConnect: true,
    // Every node connection (and the slot refresher, a duplicate of one) authenticates with these.
    redisOptions: { ...nodeOptions, lazyConnect: false },
  });
  // Plain PUBLISH reaches every node of a cluster, so one node is enough to
  // hear all events. Move to the next seed node whenever that one fails.
  const seeds = nodes;
  let seed = 0;
  const subscriber: Redis = new Redis({
    ...nodeOptions,
    enableOfflineQueue: true,
    commandTimeout: undefined,
    host: seeds[0]!.host,
    port: seeds[0]!.port,
    retryStrategy: (attempt) => {
      seed = (seed + 1) % seeds.length;
      subscriber.options.host = seeds[seed]!.host;
      subscriber.options.port = seeds[seed]!.port;
      return retryStrategy(attempt);
    },
  });
  return { command, subscriber, scanTargets: () => command.nodes('master'), isCluster: true };
}

/** Resolves once the client is connected and ready (connects it if it is lazy). */
export async function connectRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return;
  const ready = new Promise<void>((resolve) => client.once('ready', () => resolve()));
  // A failed first attempt is retried by the client itself; readiness is what counts.
  if (client.status === 'wait') client.connect().catch(() => {});
  await ready;
}
