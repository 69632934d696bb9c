import { hostname } from 'node:os';
import { LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import type { ClusterOptions, HostPort, RedisOptions } from './cluster-options.js';
import {
  ConfigError,
  parseBoolean,
  parseCidrList,
  parseDurationMs,
  parseHostPort,
  parseHostPortList,
  parsePort,
  parsePortList,
  parsePositiveInteger,
} from './parse-values.js';
import { instanceUrl } from './exposed-address.js';
import { SETTINGS, type SettingName, type SettingSpec } from './settings.js';
import { loadLiveLimits, type LiveLimits } from './abuse-limits.js';

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

type RawSettings = Partial<Record<SettingName, string>>;

const byFlag = new Map<string, SettingName>(
  Object.entries(SETTINGS).map(([name, spec]) => [spec.flag, name as SettingName]),
);

// NetBird's one-letter flags (pflag shorthands), same letters.
const SHORT_FLAGS: Readonly<Record<string, SettingName>> = {
  l: 'listenAddress',
  e: 'exposedAddress',
  d: 'letsencryptDataDir',
  a: 'letsencryptDomains',
  c: 'tlsCertFile',
  k: 'tlsKeyFile',
  s: 'authSecret',
  H: 'healthListenAddress',
};
// List flags NetBird lets users repeat: each occurrence adds to the list.
const REPEATABLE = new Set<SettingName>(['stunPorts', 'letsencryptDomains']);

/** Flags win over NB_* variables, which win over defaults. Unknown flags are errors. */
export function readRawSettings(argv: readonly string[], env: NodeJS.ProcessEnv): RawSettings {
  const raw: RawSettings = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') raw[name] = fromEnv;
  }
  const seen = new Set<SettingName>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const long = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    const short = long ? null : /^-([A-Za-z])(?:=?(.+))?$/s.exec(arg);
    const match = long ?? short;
    const name = long ? byFlag.get(long[1] as string) : short ? SHORT_FLAGS[short[1] as string] : undefined;
    if (!match || !name) throw new ConfigError(`${arg}: unknown flag (see --help)`);
    const spec: SettingSpec = SETTINGS[name];
    let given: string;
    if (match[2] !== undefined) given = match[2];
    else if (spec.boolean) given = 'true';
    else {
      const value = argv[++i];
      if (value === undefined) throw new ConfigError(`${arg}: missing value`);
      given = value;
    }
    raw[name] = REPEATABLE.has(name) && seen.has(name) ? `${raw[name] ?? ''},${given}` : given;
    seen.add(name);
  }
  return raw;
}

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): RelayConfig {
  const raw = readRawSettings(argv, env);
  const value = (name: SettingName): string | undefined => {
    const spec: SettingSpec = SETTINGS[name];
    return raw[name] ?? spec.default;
  };
  const label = (name: SettingName): string => SETTINGS[name].env;
  const required = (name: SettingName): string => {
    const v = value(name);
    if (v === undefined || v.trim() === '')
      throw new ConfigError(`${label(name)}: required (or --${SETTINGS[name].flag})`);
    return v;
  };

  for (const name of [
    'letsencryptDomains',
    'letsencryptDataDir',
    'letsencryptEmail',
    'letsencryptAwsRoute53',
  ] as const) {
    const given = raw[name];
    if (given !== undefined && !(SETTINGS[name] as SettingSpec).boolean) {
      throw new ConfigError(
        `${label(name)}: Let's Encrypt is not supported; give NB_TLS_CERT_FILE and NB_TLS_KEY_FILE or terminate TLS in front`,
      );
    }
    if (given !== undefined && parseBoolean(label(name), given)) {
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
  const exposedAddress = instanceUrl(
    label('exposedAddress'),
    required('exposedAddress').trim(),
    certFile !== undefined,
  );

  const logLevel = parseLogLevel(label('logLevel'), required('logLevel'));
  const enableStun = parseBoolean(label('enableStun'), required('enableStun'));

  const handshakeTimeoutMs = parseDurationMs(label('handshakeTimeout'), required('handshakeTimeout'));
  const healthCheckIntervalMs = parseDurationMs(
    label('healthCheckInterval'),
    required('healthCheckInterval'),
  );
  const healthCheckTimeoutMs = parseDurationMs(label('healthCheckTimeout'), required('healthCheckTimeout'));
  if (healthCheckTimeoutMs <= healthCheckIntervalMs) {
    throw new ConfigError(`${label('healthCheckTimeout')}: must be longer than NB_HEALTH_CHECK_INTERVAL`);
  }
  for (const [name, ms] of [
    ['handshakeTimeout', handshakeTimeoutMs],
    ['healthCheckInterval', healthCheckIntervalMs],
  ] as const) {
    if (ms <= 0) throw new ConfigError(`${label(name)}: must be greater than zero`);
  }

  return {
    listen: parseHostPort(label('listenAddress'), required('listenAddress')),
    exposedAddress,
    authSecret,
    metricsPort: parsePort(label('metricsPort'), required('metricsPort')),
    metricsHost: value('metricsAddress') ?? '',
    tlsReloadIntervalMs: parseDurationMs(label('tlsReloadInterval'), required('tlsReloadInterval')),
    healthListen: parseHostPort(label('healthListenAddress'), required('healthListenAddress')),
    ...(certFile !== undefined && keyFile !== undefined ? { tls: { certFile, keyFile } } : {}),
    logLevel,
    logFile: required('logFile'),
    trustedProxies: parseCidrList(label('trustedProxies'), value('trustedProxies') ?? ''),
    ...(enableStun
      ? {
          stun: {
            ports: parsePortList(label('stunPorts'), required('stunPorts')),
            logLevel: parseLogLevel(label('stunLogLevel'), required('stunLogLevel')),
          },
        }
      : {}),
    ...clusterOptions(raw, value, label, required),
    handshakeTimeoutMs,
    healthCheckIntervalMs,
    healthCheckTimeoutMs,
    drainWindowMs: parseDurationMs(label('drainWindow'), required('drainWindow')),
    maxConnections: parsePositiveInteger(label('maxConnections'), required('maxConnections')),
    sendQueueBytes: parsePositiveInteger(label('sendQueueBytes'), required('sendQueueBytes')),
    limits: loadLiveLimits(value, value('limitsFile')),
    reloadLimits: () => loadLiveLimits(value, value('limitsFile')),
  };
}

function clusterOptions(
  raw: RawSettings,
  value: (name: SettingName) => string | undefined,
  label: (name: SettingName) => string,
  required: (name: SettingName) => string,
): { cluster?: ClusterOptions } {
  const modes = (['redisUrl', 'redisSentinels', 'redisClusterNodes'] as const).filter(
    (n) => raw[n] !== undefined,
  );
  const auth = redisAuth(raw, label);
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
  const meshListen = parseHostPort(label('meshListenAddress'), required('meshListenAddress'));
  const podIp = value('podIp');
  const advertise =
    value('meshAdvertiseAddress') ??
    (podIp ? `${podIp.includes(':') ? `[${podIp}]` : podIp}:${meshListen.port}` : undefined);
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
  const tls = parseBoolean(label('redisTls'), required('redisTls'));
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
              sentinels: parseHostPortList(label('redisSentinels'), raw.redisSentinels),
              sentinelName: required('redisSentinelName'),
            }
          : {}),
        ...(raw.redisClusterNodes !== undefined
          ? { clusterNodes: parseHostPortList(label('redisClusterNodes'), raw.redisClusterNodes) }
          : {}),
        keyPrefix,
        ...auth,
        ...(tls ? { tls } : {}),
        ...(tlsCaFile !== undefined ? { tlsCaFile } : {}),
      },
      clusterSecret: required('clusterSecret'),
      meshListen,
      meshAdvertise: advertise,
      podName: value('podName') ?? hostname(),
    },
  };
}

/** Credentials of the data nodes and the Sentinels; values are never echoed in errors. */
function redisAuth(
  raw: RawSettings,
  label: (name: SettingName) => string,
): Pick<RedisOptions, 'username' | 'password' | 'sentinelPassword'> {
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

function parseLogLevel(setting: string, value: string): LogLevel {
  const level = value.trim().toLowerCase();
  if (level === 'warning') return 'warn';
  if (level === 'panic') return 'fatal';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`${setting}: expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  }
  return level as LogLevel;
}

export function helpText(): string {
  const lines = [
    'Usage: nb-cluster-relay [flags]',
    '       nb-cluster-relay token --secret S [--ttl 24h]',
    '       nb-cluster-relay probe --url rel://host:port [--url …] --secret S [--metrics-port 9091]',
    '',
  ];
  const groups = {
    relay: "Relay (same names as NetBird's relay)",
    cluster: 'Cluster mode',
    tuning: 'Tuning',
  };
  for (const [group, title] of Object.entries(groups)) {
    lines.push(`${title}:`);
    for (const spec of Object.values(SETTINGS)) {
      if (spec.group !== group) continue;
      const s: SettingSpec = spec;
      const def = s.default !== undefined && s.default !== '' ? ` (default ${s.default})` : '';
      lines.push(`  --${spec.flag.padEnd(24)} ${spec.env.padEnd(26)} ${spec.help}${def}`);
    }
    lines.push('');
  }
  lines.push('  --help                   show this text');
  return lines.join('\n');
}
