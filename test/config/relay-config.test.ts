import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { CLI_PATH } from '../support/relay-process.js';

const base = { NB_EXPOSED_ADDRESS: 'rels://relay.example.com:443', NB_AUTH_SECRET: 'x' };

describe('configuration', () => {
  it('uses NetBird defaults', () => {
    const c = loadConfig([], base);
    expect(c.listen).toEqual({ host: '', port: 443 });
    expect(c.metricsPort).toBe(9090);
    expect(c.healthListen).toEqual({ host: '', port: 9000 });
    expect(c.healthCheckIntervalMs).toBe(25_000);
    expect(c.healthCheckTimeoutMs).toBe(45_000);
    expect(c.handshakeTimeoutMs).toBe(10_000);
    expect(c.stun).toBeUndefined();
    expect(c.cluster).toBeUndefined();
  });

  it('lets flags win over NB_* variables', () => {
    const c = loadConfig(['--listen-address', '127.0.0.1:8080', '--enable-stun', '--stun-ports=3478,3479'], {
      ...base,
      NB_LISTEN_ADDRESS: ':1',
    });
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.stun?.ports).toEqual([3478, 3479]);
  });

  it('builds cluster options from NB_REDIS_* and mesh settings', () => {
    const c = loadConfig([], {
      ...base,
      NB_REDIS_URL: 'redis://redis:6379/0',
      NB_CLUSTER_SECRET: 'c',
      NB_POD_IP: '10.0.0.7',
      NB_POD_NAME: 'relay-0',
    });
    expect(c.cluster).toMatchObject({
      redis: { url: 'redis://redis:6379/0', keyPrefix: 'nbrelay' },
      meshAdvertise: '10.0.0.7:7946',
      podName: 'relay-0',
    });
  });

  const bad: [Record<string, string>, string][] = [
    [{ NB_EXPOSED_ADDRESS: '' }, 'NB_EXPOSED_ADDRESS'],
    [{ NB_EXPOSED_ADDRESS: 'https://x' }, 'NB_EXPOSED_ADDRESS'],
    [{ NB_AUTH_SECRET: '' }, 'NB_AUTH_SECRET'],
    [{ NB_LISTEN_ADDRESS: 'nope' }, 'NB_LISTEN_ADDRESS'],
    [{ NB_METRICS_PORT: '70000' }, 'NB_METRICS_PORT'],
    [{ NB_LOG_LEVEL: 'loud' }, 'NB_LOG_LEVEL'],
    [{ NB_TLS_CERT_FILE: '/c.pem' }, 'NB_TLS_KEY_FILE'],
    [{ NB_TRUSTED_PROXIES: '10.0.0.0/40' }, 'NB_TRUSTED_PROXIES'],
    [{ NB_ENABLE_STUN: 'maybe' }, 'NB_ENABLE_STUN'],
    [{ NB_ENABLE_STUN: 'true', NB_STUN_PORTS: 'x' }, 'NB_STUN_PORTS'],
    [{ NB_HEALTH_CHECK_TIMEOUT: '10s' }, 'NB_HEALTH_CHECK_TIMEOUT'],
    [{ NB_LETSENCRYPT_DOMAINS: 'a.example' }, 'NB_LETSENCRYPT_DOMAINS'],
    [{ NB_REDIS_URL: 'http://x' }, 'NB_REDIS_URL'],
    [{ NB_REDIS_URL: 'redis://x', NB_MESH_ADVERTISE_ADDRESS: '1.2.3.4:7946' }, 'NB_CLUSTER_SECRET'],
    [{ NB_REDIS_URL: 'redis://x', NB_CLUSTER_SECRET: 'c' }, 'NB_MESH_ADVERTISE_ADDRESS'],
    [{ NB_REDIS_URL: 'redis://x', NB_REDIS_CLUSTER_NODES: 'a:1' }, 'NB_REDIS_CLUSTER_NODES'],
  ];
  it.each(bad)('%o fails naming %s', (env, setting) => {
    expect(() => loadConfig([], { ...base, ...env })).toThrow(new RegExp(`^${setting}:`));
  });

  it('the CLI prints one line naming the setting and exits non-zero', () => {
    const run = spawnSync(process.execPath, [CLI_PATH, '--metrics-port', 'abc'], {
      env: { PATH: process.env.PATH, ...base },
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('nb-cluster-relay: NB_METRICS_PORT: expected a port number 0-65535, got "abc"\n');
    expect(run.stdout).toBe('');
  });

  it('the CLI refuses unknown flags and prints help on --help', () => {
    const unknown = spawnSync(process.execPath, [CLI_PATH, '--frobnicate'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('--frobnicate: unknown flag');
    const help = spawnSync(process.execPath, [CLI_PATH, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const name of [
      'NB_LISTEN_ADDRESS',
      'NB_EXPOSED_ADDRESS',
      'NB_AUTH_SECRET',
      'NB_REDIS_URL',
      'NB_TRUSTED_PROXIES',
    ]) {
      expect(help.stdout).toContain(name);
    }
  });

  it('the token tool prints a token the relay accepts', async () => {
    const run = spawnSync(process.execPath, [CLI_PATH, 'token', '--secret', 'abc', '--ttl', '1h'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const token = Buffer.from(run.stdout.trim(), 'base64');
    const { HmacTokenValidator } = await import('../../src/auth/hmac-token.js');
    const check = new HmacTokenValidator('abc').check(token);
    expect(check.ok).toBe(true);
    if (check.ok) expect(check.expiresAt - Date.now() / 1000).toBeGreaterThan(3500);
  });
});
