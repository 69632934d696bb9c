import { hostname } from 'node:os';
import { formatHostPort, type HostPort } from '../net/host-port.js';
import { loadLiveLimits, type LiveLimits } from './abuse-limits.js';
import type { ClusterOptions, RedisOptions } from './cluster-options.js';
import { readRawSettings, SettingValues } from './command-line.js';
import { instanceUrl } from './exposed-address.js';
import { ConfigError, parseBoolean, parseHostPort, type LogLevel } from './parse-values.js';
import { SETTINGS, type SettingName, type SettingSpec } from './settings.js';
import { K8S_SETTINGS } from './settings-k8s.js';

export interface RelayConfig {
  readonly listen: HostPort;
  /** The instance URL sent in every auth response (derived from NB_EXPOSED_ADDRESS as NetBird does). */
  readonly exposedAddress: string;
  readonly authSecret: string;
  readonly metricsPort: number;
  /** Host the metrics endpoint binds; empty means every interface. */
  readonly metricsHost: string;
  readonly tlsReloadIntervalMs: number;
  readonly healthListen: HostPort;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly logLevel: LogLevel;
  readonly logFile: string;
  readonly trustedProxies: readonly string[];
  readonly stun?: { readonly ports: readonly number[]; readonly logLevel: LogLevel };
  /** This pod's name (NB_POD_NAME, else the hostname). */
  readonly podName: string;
  readonly cluster?: ClusterOptions;
  readonly handshakeTimeoutMs: number;
  readonly healthCheckIntervalMs: number;
  readonly healthCheckTimeoutMs: number;
  readonly drainWindowMs: number;
  readonly maxConnections: number;
  readonly sendQueueBytes: number;
  /** Per-IP and per-session limits; SIGHUP re-reads them (see reloadLimits). */
  readonly limits: LiveLimits;
  /** Re-reads the live limits (limits file over flags, env, defaults); throws ConfigError. */
  readonly reloadLimits: () => LiveLimits;
}

/** Every setting the relay command reads: its own and the Kubernetes integration's. */
export const RELAY_COMMAND_SETTINGS = { ...SETTINGS, ...K8S_SETTINGS } as const;
export type RelaySettingValues = SettingValues<typeof RELAY_COMMAND_SETTINGS>;

/** Flags over NB_* variables over defaults; throws ConfigError on an unknown flag. */
export function readRelaySettings(argv: readonly string[], env: NodeJS.ProcessEnv): RelaySettingValues {
  return new SettingValues(RELAY_COMMAND_SETTINGS, readRawSettings(RELAY_COMMAND_SETTINGS, argv, env));
}

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): RelayConfig {
  return relayConfig(readRelaySettings(argv, env));
}

/** This pod's name, for the registry and the Kubernetes integration alike: NB_POD_NAME, else the hostname. */
export function podNameOf(settings: RelaySettingValues): string {
  return settings.value('podName')?.trim() || hostname();
}

/** The relay's configuration from its settings; throws ConfigError naming the setting. */
export function relayConfig(settings: RelaySettingValues): RelayConfig {
  const { raw } = settings;
  const value = (name: SettingName): string | undefined => settings.value(name);
  const label = (name: SettingName): string => settings.label(name);
  const required = (name: SettingName): string => settings.required(name);

  for (const name of [
    'letsencryptDomains',
    'letsencryptDataDir',
    'letsencryptEmail',
    'letsencryptAwsRoute53',
  ] as const) {
    const given = raw[name];
    const flagOnly = (SETTINGS[name] as SettingSpec).type === 'boolean';
    if (given !== undefined && (!flagOnly || parseBoolean(label(name), given))) {
      throw new ConfigError(
        `${label(name)}: Let's Encrypt is not supported; give NB_TLS_CERT_FILE and NB_TLS_KEY_FILE or terminate TLS in front`,
      );
    }
  }

  const authSecret = required('authSecret');

  const certFile = value('tlsCertFile');
  const keyFile = value('tlsKeyFile');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const missing = certFile === undefined ? 'tlsCertFile' : 'tlsKeyFile';
    throw new ConfigError(`${label(missing)}: TLS needs both NB_TLS_CERT_FILE and NB_TLS_KEY_FILE`);
  }
  const exposedAddress = instanceUrl(label('exposedAddress'), required('exposedAddress').trim(), {
    tls: certFile !== undefined,
  });

  const logLevel = settings.logLevel('logLevel');
  const enableStun = settings.boolean('enableStun');

  const handshakeTimeoutMs = settings.durationMs('handshakeTimeout');
  const healthCheckIntervalMs = settings.durationMs('healthCheckInterval');
  const healthCheckTimeoutMs = settings.durationMs('healthCheckTimeout');
  if (healthCheckTimeoutMs <= healthCheckIntervalMs) {
    throw new ConfigError(`${label('healthCheckTimeout')}: must be longer than NB_HEALTH_CHECK_INTERVAL`);
  }
  for (const [name, ms] of [
    ['handshakeTimeout', handshakeTimeoutMs],
    ['healthCheckInterval', healthCheckIntervalMs],
  ] as const) {
    if (ms <= 0) throw new ConfigError(`${label(name)}: must be greater than zero`);
  }

  const podName = podNameOf(settings);
  return {
    listen: settings.hostPort('listenAddress'),
    exposedAddress,
    authSecret,
    metricsPort: settings.port('metricsPort'),
    metricsHost: value('metricsAddress') ?? '',
    tlsReloadIntervalMs: settings.durationMs('tlsReloadInterval'),
    healthListen: settings.hostPort('healthListenAddress'),
    ...(certFile !== undefined && keyFile !== undefined ? { tls: { certFile, keyFile } } : {}),
    logLevel,
    logFile: required('logFile'),
    trustedProxies: settings.cidrList('trustedProxies'),
    ...(enableStun
      ? { stun: { ports: settings.portList('stunPorts'), logLevel: settings.logLevel('stunLogLevel') } }
      : {}),
    podName,
    ...clusterOptions(settings, podName),
    handshakeTimeoutMs,
    healthCheckIntervalMs,
    healthCheckTimeoutMs,
    drainWindowMs: settings.durationMs('drainWindow'),
    maxConnections: settings.positiveInteger('maxConnections'),
    sendQueueBytes: settings.positiveInteger('sendQueueBytes'),
    limits: loadLiveLimits(value, value('limitsFile')),
    reloadLimits: () => loadLiveLimits(value, value('limitsFile')),
  };
}

function clusterOptions(settings: RelaySettingValues, podName: string): { cluster?: ClusterOptions } {
  const { raw } = settings;
  const value = (name: SettingName): string | undefined => settings.value(name);
  const label = (name: SettingName): string => settings.label(name);
  const required = (name: SettingName): string => settings.required(name);
  const modes = (['redisUrl', 'redisSentinels', 'redisClusterNodes'] as const).filter(
    (n) => raw[n] !== undefined,
  );
  const auth = redisAuth(settings);
  if (modes.length === 0) return {};
  if (modes.length > 1) {
    throw new ConfigError(
      `${label(modes[1] as SettingName)}: give only one of NB_REDIS_URL, NB_REDIS_SENTINELS, NB_REDIS_CLUSTER_NODES`,
    );
  }
  const url = raw.redisUrl;
  if (url !== undefined && !/^rediss?:\/\/\S+$/.test(url)) {
    throw new ConfigError(`${label('redisUrl')}: expected a redis:// or rediss:// URL`);
  }
  const meshListen = settings.hostPort('meshListenAddress');
  const podIp = value('podIp');
  const advertise =
    value('meshAdvertiseAddress') ?? (podIp ? formatHostPort(podIp, meshListen.port) : undefined);
  if (advertise === undefined) {
    throw new ConfigError(`${label('meshAdvertiseAddress')}: required in cluster mode (or set NB_POD_IP)`);
  }
  const advertised = parseHostPort(label('meshAdvertiseAddress'), advertise);
  if (advertised.host === '' || advertised.port === 0) {
    throw new ConfigError(
      `${label('meshAdvertiseAddress')}: must name a reachable host and port, got "${advertise}"`,
    );
  }
  const keyPrefix = required('redisKeyPrefix');
  if (!/^[A-Za-z0-9_.:-]+$/.test(keyPrefix)) {
    throw new ConfigError(`${label('redisKeyPrefix')}: only letters, digits and _ . : - are allowed`);
  }
  const tls = settings.boolean('redisTls');
  if (tls && url?.startsWith('redis://')) {
    throw new ConfigError(`${label('redisTls')}: with NB_REDIS_URL, use a rediss:// URL instead`);
  }
  const tlsCaFile = raw.redisTlsCaFile;
  if (tlsCaFile !== undefined && !tls && !url?.startsWith('rediss://')) {
    throw new ConfigError(
      `${label('redisTlsCaFile')}: needs NB_REDIS_TLS=true (or a rediss:// NB_REDIS_URL)`,
    );
  }
  return {
    cluster: {
      redis: {
        ...(url !== undefined ? { url } : {}),
        ...(raw.redisSentinels !== undefined
          ? {
              sentinels: settings.hostPortList('redisSentinels'),
              sentinelName: required('redisSentinelName'),
            }
          : {}),
        ...(raw.redisClusterNodes !== undefined
          ? { clusterNodes: settings.hostPortList('redisClusterNodes') }
          : {}),
        keyPrefix,
        ...auth,
        ...(tls ? { tls } : {}),
        ...(tlsCaFile !== undefined ? { tlsCaFile } : {}),
      },
      clusterSecret: required('clusterSecret'),
      meshListen,
      meshAdvertise: advertise,
      podName,
    },
  };
}

/** Credentials of the data nodes and the Sentinels; values are never echoed in errors. */
function redisAuth(
  settings: RelaySettingValues,
): Pick<RedisOptions, 'username' | 'password' | 'sentinelPassword'> {
  const { raw } = settings;
  const label = (name: SettingName): string => settings.label(name);
  const { redisUsername: username, redisPassword: password, redisSentinelPassword: sentinelPassword } = raw;
  if (username !== undefined && password === undefined) {
    throw new ConfigError(`${label('redisUsername')}: needs NB_REDIS_PASSWORD (the ACL user's password)`);
  }
  if (sentinelPassword !== undefined && raw.redisSentinels === undefined) {
    throw new ConfigError(`${label('redisSentinelPassword')}: only used with NB_REDIS_SENTINELS`);
  }
  return {
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(sentinelPassword !== undefined ? { sentinelPassword } : {}),
  };
}
