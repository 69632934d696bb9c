import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText } from '../../src/config/help.js';
import { ConfigError } from '../../src/config/parse-values.js';
import { readRelaySettings, relayConfig, RELAY_COMMAND_SETTINGS } from '../../src/config/relay-config.js';
import type { SettingSpec, SettingType } from '../../src/config/settings.js';
import { parseTokenArgs, PROBE_SETTINGS, TOKEN_SETTINGS } from '../../src/config/settings-tools.js';
import { k8sSettings } from '../../src/k8s/k8s-settings.js';
import { DEFAULT_REBALANCE_OPTIONS } from '../../src/k8s/rebalance-policy.js';
import { DEFAULT_REBALANCER_TIMING } from '../../src/k8s/rebalancer.js';
import { parseProbeArgs } from '../../src/probe/probe-command.js';
import { tempDir } from '../support/temp-dir.js';

const TABLES: Record<string, Readonly<Record<string, SettingSpec>>> = {
  relay: RELAY_COMMAND_SETTINGS,
  probe: PROBE_SETTINGS,
  token: TOKEN_SETTINGS,
};

// A value each type's parser must refuse.
const BAD_VALUE: Record<Exclude<SettingType, 'string'>, string> = {
  boolean: 'maybe',
  duration: 'soon',
  port: '70000',
  portList: '3478,x',
  hostPort: 'no-port',
  hostPortList: 'no-port',
  integer: '-1',
  count: '-1',
  fraction: '0',
  cidrList: '300.1.1.1',
  logLevel: 'loud',
};

function serviceAccountDir(): string {
  const dir = tempDir('nb-sa-');
  writeFileSync(join(dir, 'token'), 'token');
  writeFileSync(join(dir, 'namespace'), 'relay-ns\n');
  return dir;
}

// Every part of the relay's configuration switched on, so that every setting is read.
const FULL_RELAY_ENV = {
  NB_EXPOSED_ADDRESS: 'rels://relay.example.com:443',
  NB_AUTH_SECRET: 'x',
  NB_ENABLE_STUN: 'true',
  NB_REDIS_URL: 'redis://redis:6379',
  NB_CLUSTER_SECRET: 'c',
  NB_POD_IP: '10.0.0.7',
  NB_POD_NAME: 'relay-0',
  KUBERNETES_SERVICE_HOST: '10.96.0.1',
  KUBERNETES_SERVICE_PORT: '443',
  NB_K8S_ENABLED: 'true',
  NB_K8S_HEADLESS_SERVICE: 'relay-mesh',
};

function parseRelay(env: NodeJS.ProcessEnv, saDir: string): void {
  const settings = readRelaySettings([], env);
  const config = relayConfig(settings);
  k8sSettings(settings, { podName: config.podName, env, defaultServiceAccountDir: saDir });
}

function typedRows(table: Readonly<Record<string, SettingSpec>>): [string, SettingSpec, string][] {
  return Object.entries(table).flatMap(([name, spec]) =>
    spec.type === undefined || spec.type === 'string' ? [] : [[name, spec, BAD_VALUE[spec.type]]],
  );
}

function thrown(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('no ConfigError');
}

describe('the settings tables', () => {
  it('--help lists every setting of every subcommand, flag and variable', () => {
    const help = helpText();
    for (const [command, table] of Object.entries(TABLES)) {
      for (const spec of Object.values(table)) {
        expect(help, `${command} --${spec.flag}`).toContain(`--${spec.flag} `);
        if (spec.env !== undefined) expect(help, `${command} ${spec.env}`).toContain(` ${spec.env} `);
      }
    }
  });

  it('the full relay configuration used below is valid', () => {
    const saDir = serviceAccountDir();
    const settings = readRelaySettings([], FULL_RELAY_ENV);
    const config = relayConfig(settings);
    expect(config.stun?.logLevel).toBe('info');
    expect(config.cluster?.podName).toBe('relay-0');
    const k8s = k8sSettings(settings, {
      podName: config.podName,
      env: FULL_RELAY_ENV,
      defaultServiceAccountDir: saDir,
    });
    expect(k8s?.podName).toBe('relay-0');
    // The table's defaults are the ones the rebalancer and its policy use.
    expect(k8s?.rebalance.policy).toEqual(DEFAULT_REBALANCE_OPTIONS);
    expect(k8s?.rebalance.timing).toEqual(DEFAULT_REBALANCER_TIMING);
  });

  it.each(typedRows(RELAY_COMMAND_SETTINGS))('relay: a bad %s is refused naming %s', (name, spec, bad) => {
    const saDir = serviceAccountDir();
    const env: NodeJS.ProcessEnv = { ...FULL_RELAY_ENV, [spec.env as string]: bad };
    // The Sentinel and Cluster lists are read only when they are the one Redis mode.
    if (name === 'redisSentinels' || name === 'redisClusterNodes') delete env.NB_REDIS_URL;
    expect(thrown(() => parseRelay(env, saDir))).toMatch(new RegExp(`^${spec.env}: `));
  });

  it.each(typedRows(PROBE_SETTINGS))('probe: a bad %s is refused naming --%s', (_name, spec, bad) => {
    const args = ['--url', 'rel://a:1', '--secret', 's', '--once', `--${spec.flag}=${bad}`];
    expect(thrown(() => parseProbeArgs(args, {}))).toMatch(new RegExp(`^--${spec.flag}: `));
  });

  it.each(typedRows(TOKEN_SETTINGS))('token: a bad %s is refused naming --%s', (_name, spec, bad) => {
    const args = ['--secret', 's', `--${spec.flag}=${bad}`];
    expect(thrown(() => parseTokenArgs(args, {}))).toMatch(new RegExp(`^--${spec.flag}: `));
  });

  it('a missing required value names the setting and where else it can be given', () => {
    expect(thrown(() => parseTokenArgs([], {}))).toBe('--secret: required (or NB_AUTH_SECRET)');
    expect(parseTokenArgs(['--auth-secret=s', '--ttl', '1h'], {})).toEqual({ secret: 's', ttlSeconds: 3600 });
    expect(thrown(() => readRelaySettings(['--nope'], {}))).toBe('--nope: unknown flag (see --help)');
  });
});
