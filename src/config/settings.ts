/** How a setting's text is read; the parser's error names the setting. */
export type SettingType =
  | 'string'
  | 'boolean'
  | 'duration'
  | 'port'
  | 'portList'
  | 'hostPort'
  | 'hostPortList'
  | 'integer'
  | 'count'
  | 'fraction'
  | 'cidrList'
  | 'logLevel';

export type SettingGroup = 'relay' | 'cluster' | 'k8s' | 'tuning' | 'probe' | 'token';

/**
 * One setting of one subcommand: its --flag, its NB_* variable, default and help.
 * Every table of settings (relay, k8s, probe, token) has this shape; one reader
 * (command-line.ts) parses them all and writes `--help` from them.
 */
export interface SettingSpec {
  readonly flag: string;
  readonly env?: string;
  readonly help: string;
  readonly default?: string;
  /** 'string' when absent. A boolean flag may be given without a value. */
  readonly type?: SettingType;
  /** Printed only as "set" / "not set". */
  readonly secret?: boolean;
  readonly group: SettingGroup;
  /** Other spellings of the flag, e.g. NetBird's one-letter shorthand. */
  readonly aliases?: readonly string[];
  /** A list flag that may be repeated; each occurrence adds to the list. */
  readonly repeatable?: boolean;
}

/** The relay's own settings; NetBird's names are kept. */
export const SETTINGS = {
  listenAddress: {
    aliases: ['l'],
    type: 'hostPort',
    flag: 'listen-address',
    env: 'NB_LISTEN_ADDRESS',
    default: ':443',
    help: 'address the relay WebSocket listener binds (host:port or :port)',
    group: 'relay',
  },
  exposedAddress: {
    aliases: ['e'],
    flag: 'exposed-address',
    env: 'NB_EXPOSED_ADDRESS',
    help: 'address peers use: host:port (rels:// with TLS, rel:// without) or a rel(s):// URL, path allowed (required)',
    group: 'relay',
  },
  authSecret: {
    aliases: ['s'],
    flag: 'auth-secret',
    env: 'NB_AUTH_SECRET',
    help: 'shared secret for HMAC peer tokens, as given to NetBird management (required)',
    secret: true,
    group: 'relay',
  },
  metricsPort: {
    type: 'port',
    flag: 'metrics-port',
    env: 'NB_METRICS_PORT',
    default: '9090',
    help: 'port of the Prometheus /metrics endpoint',
    group: 'relay',
  },
  metricsAddress: {
    flag: 'metrics-address',
    env: 'NB_METRICS_ADDRESS',
    default: '',
    help: 'host the /metrics endpoint binds (empty: all interfaces, as NetBird does)',
    group: 'relay',
  },
  healthListenAddress: {
    aliases: ['H'],
    type: 'hostPort',
    flag: 'health-listen-address',
    env: 'NB_HEALTH_LISTEN_ADDRESS',
    default: ':9000',
    help: 'address of the /healthz and /readyz endpoints',
    group: 'relay',
  },
  tlsCertFile: {
    aliases: ['c'],
    flag: 'tls-cert-file',
    env: 'NB_TLS_CERT_FILE',
    help: 'PEM certificate; with --tls-key-file the listener speaks wss',
    group: 'relay',
  },
  tlsKeyFile: {
    flag: 'tls-key-file',
    env: 'NB_TLS_KEY_FILE',
    help: 'PEM private key',
    group: 'relay',
    aliases: ['k'],
  },
  tlsReloadInterval: {
    type: 'duration',
    flag: 'tls-reload-interval',
    env: 'NB_TLS_RELOAD_INTERVAL',
    default: '10s',
    help: 'how often the TLS files are checked for a new certificate',
    group: 'relay',
  },
  letsencryptDomains: {
    repeatable: true,
    aliases: ['a'],
    flag: 'letsencrypt-domains',
    env: 'NB_LETSENCRYPT_DOMAINS',
    help: 'not supported: use TLS files or terminate TLS in front of the relay',
    group: 'relay',
  },
  letsencryptDataDir: {
    aliases: ['d'],
    flag: 'letsencrypt-data-dir',
    env: 'NB_LETSENCRYPT_DATA_DIR',
    help: 'not supported (see --letsencrypt-domains)',
    group: 'relay',
  },
  letsencryptEmail: {
    flag: 'letsencrypt-email',
    env: 'NB_LETSENCRYPT_EMAIL',
    help: 'not supported (see --letsencrypt-domains)',
    group: 'relay',
  },
  letsencryptAwsRoute53: {
    flag: 'letsencrypt-aws-route53',
    env: 'NB_LETSENCRYPT_AWS_ROUTE53',
    default: 'false',
    type: 'boolean',
    help: 'not supported (see --letsencrypt-domains)',
    group: 'relay',
  },
  logLevel: {
    type: 'logLevel',
    flag: 'log-level',
    env: 'NB_LOG_LEVEL',
    default: 'info',
    help: 'trace, debug, info, warn, error, fatal or silent',
    group: 'relay',
  },
  logFile: {
    flag: 'log-file',
    env: 'NB_LOG_FILE',
    default: 'console',
    help: '"console" for stdout, or a file path',
    group: 'relay',
  },
  trustedProxies: {
    type: 'cidrList',
    flag: 'trusted-proxies',
    env: 'NB_TRUSTED_PROXIES',
    default: '',
    help: 'comma-separated IPs/CIDRs whose X-Real-Ip / X-Real-Port headers are believed',
    group: 'relay',
  },
  enableStun: {
    flag: 'enable-stun',
    env: 'NB_ENABLE_STUN',
    default: 'false',
    type: 'boolean',
    help: 'answer STUN binding requests on --stun-ports',
    group: 'relay',
  },
  stunPorts: {
    repeatable: true,
    type: 'portList',
    flag: 'stun-ports',
    env: 'NB_STUN_PORTS',
    default: '3478',
    help: 'comma-separated UDP ports for STUN',
    group: 'relay',
  },
  stunLogLevel: {
    type: 'logLevel',
    flag: 'stun-log-level',
    env: 'NB_STUN_LOG_LEVEL',
    default: 'info',
    help: 'log level of the STUN server',
    group: 'relay',
  },
  redisUrl: {
    flag: 'redis-url',
    env: 'NB_REDIS_URL',
    help: 'redis:// or rediss:// URL; enables cluster mode',
    secret: true,
    group: 'cluster',
  },
  redisSentinels: {
    type: 'hostPortList',
    flag: 'redis-sentinels',
    env: 'NB_REDIS_SENTINELS',
    help: 'comma-separated host:port of Redis Sentinels; enables cluster mode',
    group: 'cluster',
  },
  redisSentinelName: {
    flag: 'redis-sentinel-name',
    env: 'NB_REDIS_SENTINEL_NAME',
    default: 'mymaster',
    help: 'master name the Sentinels monitor',
    group: 'cluster',
  },
  redisClusterNodes: {
    type: 'hostPortList',
    flag: 'redis-cluster-nodes',
    env: 'NB_REDIS_CLUSTER_NODES',
    help: 'comma-separated host:port seeds of a Redis Cluster; enables cluster mode',
    group: 'cluster',
  },
  redisUsername: {
    flag: 'redis-username',
    env: 'NB_REDIS_USERNAME',
    help: 'ACL user of the Redis data nodes (Redis 6+; needs --redis-password)',
    group: 'cluster',
  },
  redisPassword: {
    flag: 'redis-password',
    env: 'NB_REDIS_PASSWORD',
    help: 'password of the Redis data nodes (every mode; credentials in NB_REDIS_URL win over it)',
    secret: true,
    group: 'cluster',
  },
  redisSentinelPassword: {
    flag: 'redis-sentinel-password',
    env: 'NB_REDIS_SENTINEL_PASSWORD',
    help: 'password of the Sentinels themselves (Sentinel mode only)',
    secret: true,
    group: 'cluster',
  },
  redisTls: {
    flag: 'redis-tls',
    env: 'NB_REDIS_TLS',
    default: 'false',
    type: 'boolean',
    help: 'TLS to the Redis data nodes and Sentinels (Sentinel and Cluster mode; with a URL use rediss://)',
    group: 'cluster',
  },
  redisTlsCaFile: {
    flag: 'redis-tls-ca-file',
    env: 'NB_REDIS_TLS_CA_FILE',
    help: 'PEM CA bundle that signed the Redis certificates (with NB_REDIS_TLS or rediss://; default: system CAs)',
    group: 'cluster',
  },
  redisKeyPrefix: {
    flag: 'redis-key-prefix',
    env: 'NB_REDIS_KEY_PREFIX',
    default: 'nbrelay',
    help: 'prefix of every Redis key and channel',
    group: 'cluster',
  },
  clusterSecret: {
    flag: 'cluster-secret',
    env: 'NB_CLUSTER_SECRET',
    help: 'shared secret authenticating pod-to-pod mesh links (required in cluster mode)',
    secret: true,
    group: 'cluster',
  },
  meshListenAddress: {
    type: 'hostPort',
    flag: 'mesh-listen-address',
    env: 'NB_MESH_LISTEN_ADDRESS',
    default: ':7946',
    help: 'address the pod-to-pod mesh listener binds',
    group: 'cluster',
  },
  meshAdvertiseAddress: {
    type: 'hostPort',
    flag: 'mesh-advertise-address',
    env: 'NB_MESH_ADVERTISE_ADDRESS',
    help: 'host:port other pods dial to reach this one (default: pod IP from NB_POD_IP + mesh port)',
    group: 'cluster',
  },
  podName: {
    flag: 'pod-name',
    env: 'NB_POD_NAME',
    help: 'stable name of this pod; a restart under the same name reaps its predecessor (default: hostname)',
    group: 'cluster',
  },
  podIp: { flag: 'pod-ip', env: 'NB_POD_IP', help: "this pod's IP (downward API)", group: 'cluster' },
  handshakeTimeout: {
    type: 'duration',
    flag: 'handshake-timeout',
    env: 'NB_HANDSHAKE_TIMEOUT',
    default: '10s',
    help: 'time a new connection has to authenticate',
    group: 'tuning',
  },
  healthCheckInterval: {
    type: 'duration',
    flag: 'health-check-interval',
    env: 'NB_HEALTH_CHECK_INTERVAL',
    default: '25s',
    help: 'interval of the health checks sent to peers',
    group: 'tuning',
  },
  healthCheckTimeout: {
    type: 'duration',
    flag: 'health-check-timeout',
    env: 'NB_HEALTH_CHECK_TIMEOUT',
    default: '45s',
    help: 'a peer silent for this long after a health check is due is closed (> interval)',
    group: 'tuning',
  },
  drainWindow: {
    type: 'duration',
    flag: 'drain-window',
    env: 'NB_DRAIN_WINDOW',
    default: '10s',
    help: 'on SIGTERM, close messages to peers are spread over this window',
    group: 'tuning',
  },
  maxConnections: {
    type: 'integer',
    flag: 'max-connections',
    env: 'NB_MAX_CONNECTIONS',
    default: '100000',
    help: 'most simultaneous TCP connections on the relay listener',
    group: 'tuning',
  },
  sendQueueBytes: {
    type: 'integer',
    flag: 'send-queue-bytes',
    env: 'NB_SEND_QUEUE_BYTES',
    default: '524288',
    help: 'data bytes queued per peer before the oldest are dropped',
    group: 'tuning',
  },
  connectRate: {
    type: 'count',
    flag: 'connect-rate',
    env: 'NB_CONNECT_RATE',
    default: '50',
    help: 'TCP connections per second per client IP on the relay listener (0: no limit)',
    group: 'tuning',
  },
  connectBurst: {
    type: 'count',
    flag: 'connect-burst',
    env: 'NB_CONNECT_BURST',
    default: '500',
    help: 'connections one IP may open at once before NB_CONNECT_RATE applies',
    group: 'tuning',
  },
  handshakeRate: {
    type: 'count',
    flag: 'handshake-rate',
    env: 'NB_HANDSHAKE_RATE',
    default: '20',
    help: 'WebSocket upgrades per second per client IP (0: no limit)',
    group: 'tuning',
  },
  handshakeBurst: {
    type: 'count',
    flag: 'handshake-burst',
    env: 'NB_HANDSHAKE_BURST',
    default: '200',
    help: 'upgrades one client IP may make at once before NB_HANDSHAKE_RATE applies',
    group: 'tuning',
  },
  maxConnectionsPerIp: {
    type: 'count',
    flag: 'max-connections-per-ip',
    env: 'NB_MAX_CONNECTIONS_PER_IP',
    default: '500',
    help: 'upgraded connections one client IP may hold (0: no limit)',
    group: 'tuning',
  },
  maxSubscriptionsPerPeer: {
    type: 'integer',
    flag: 'max-subscriptions-per-peer',
    env: 'NB_MAX_SUBSCRIPTIONS_PER_PEER',
    default: '8192',
    help: 'peers one session may subscribe to; beyond it the session is closed',
    group: 'tuning',
  },
  limitsFile: {
    flag: 'limits-file',
    env: 'NB_LIMITS_FILE',
    help: 'file of NB_*=value lines for the per-IP and subscription limits; re-read on SIGHUP',
    group: 'tuning',
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;
