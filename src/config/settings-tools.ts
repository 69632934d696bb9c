import { SettingValues, readRawSettings } from './command-line.js';
import type { SettingSpec } from './settings.js';

/** Flags of `nb-cluster-relay probe`. */
export const PROBE_SETTINGS = {
  url: {
    flag: 'url',
    help: 'relay URL rel:// or rels://, host, optional port and path; repeat or comma-separate to pin the two probe clients to different pods (required)',
    repeatable: true,
    group: 'probe',
  },
  secret: {
    flag: 'secret',
    env: 'NB_AUTH_SECRET',
    help: 'auth secret of the relay (required)',
    secret: true,
    group: 'probe',
  },
  interval: {
    flag: 'interval',
    default: '1s',
    type: 'duration',
    help: 'time between probe packets',
    group: 'probe',
  },
  reconnectInterval: {
    flag: 'reconnect-interval',
    default: '60s',
    type: 'duration',
    help: 'how often one client reconnects to time the notice the other gets (0s: never)',
    group: 'probe',
  },
  metricsPort: {
    flag: 'metrics-port',
    default: '9091',
    type: 'port',
    help: 'Prometheus metrics at :PORT/metrics',
    group: 'probe',
  },
  logLevel: {
    flag: 'log-level',
    env: 'NB_LOG_LEVEL',
    default: 'info',
    type: 'logLevel',
    help: 'trace, debug, info, warn, error, fatal or silent',
    group: 'probe',
  },
  once: {
    flag: 'once',
    default: 'false',
    type: 'boolean',
    help: 'one round trip through the relay, then exit 0 (non-zero on failure; for helm test)',
    group: 'probe',
  },
  timeout: {
    flag: 'timeout',
    default: '30s',
    type: 'duration',
    help: 'with --once: how long to wait for that round trip',
    group: 'probe',
  },
} as const satisfies Record<string, SettingSpec>;

/** Flags of `nb-cluster-relay token`. */
export const TOKEN_SETTINGS = {
  secret: {
    flag: 'secret',
    env: 'NB_AUTH_SECRET',
    aliases: ['auth-secret'],
    help: 'auth secret of the relay (required)',
    secret: true,
    group: 'token',
  },
  ttl: {
    flag: 'ttl',
    default: '24h',
    type: 'duration',
    help: 'how long the token is valid',
    group: 'token',
  },
} as const satisfies Record<string, SettingSpec>;

export interface TokenSettings {
  readonly secret: string;
  readonly ttlSeconds: number;
}

/** Reads the token tool's flags (and NB_AUTH_SECRET); throws ConfigError naming the flag. */
export function parseTokenArgs(args: readonly string[], env: NodeJS.ProcessEnv): TokenSettings {
  const values = new SettingValues(TOKEN_SETTINGS, readRawSettings(TOKEN_SETTINGS, args, env), 'flag');
  return {
    secret: values.required('secret'),
    ttlSeconds: Math.ceil(values.durationMs('ttl') / 1000),
  };
}
