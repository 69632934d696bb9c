import type { HostPort } from '../net/host-port.js';

/**
 * The longest window a shed request may spread its closes over: the mesh refuses
 * longer ones, and NB_REBALANCE_WINDOW may not ask for more.
 */
export const MAX_SHED_WINDOW_MS = 60 * 60_000;

/** Settings of cluster mode; present only when a Redis deployment is configured. */

export interface RedisOptions {
  /** redis:// or rediss:// URL of a single primary. */
  readonly url?: string;
  readonly sentinels?: readonly HostPort[];
  readonly sentinelName?: string;
  readonly clusterNodes?: readonly HostPort[];
  readonly keyPrefix: string;
  /** ACL user of the data nodes (Redis 6+). Credentials in `url` win. */
  readonly username?: string;
  /** Password of the data nodes, in every mode. A password in `url` wins. */
  readonly password?: string;
  /** Password of the Sentinels themselves (Sentinel mode). */
  readonly sentinelPassword?: string;
  /** TLS to the data nodes and Sentinels (Sentinel and Cluster mode; a URL uses rediss://). */
  readonly tls?: boolean;
  /** PEM CA bundle to verify Redis certificates with (TLS or rediss://); default: Node's CAs. */
  readonly tlsCaFile?: string;
}

export interface ClusterOptions {
  readonly redis: RedisOptions;
  /** Shared secret that authenticates mesh links between instances. */
  readonly clusterSecret: string;
  readonly meshListen: HostPort;
  /** host:port other instances dial to reach this one. */
  readonly meshAdvertise: string;
  /** Stable name of the pod (or process slot); a restart under the same name reaps its predecessor. */
  readonly podName: string;
}
