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

  it('builds Redis credentials and TLS for each deployment mode', () => {
    const cluster = { NB_CLUSTER_SECRET: 'c', NB_MESH_ADVERTISE_ADDRESS: '10.0.0.7:7946' };
    const sentinel = loadConfig([], {
      ...base,
      ...cluster,
      NB_REDIS_SENTINELS: 'sentinel-0:26379,sentinel-1:26379',
      NB_REDIS_PASSWORD: 'data pw with spaces ',
      NB_REDIS_SENTINEL_PASSWORD: 'sentinel-pw',
      NB_REDIS_TLS: 'true',
      NB_REDIS_TLS_CA_FILE: '/etc/redis-ca/ca.crt',
    });
    expect(sentinel.cluster?.redis).toEqual({
      sentinels: [
        { host: 'sentinel-0', port: 26379 },
        { host: 'sentinel-1', port: 26379 },
      ],
      sentinelName: 'mymaster',
      keyPrefix: 'nbrelay',
      password: 'data pw with spaces ', // passwords are taken as given, not trimmed
      sentinelPassword: 'sentinel-pw',
      tls: true,
      tlsCaFile: '/etc/redis-ca/ca.crt',
    });
    const redisCluster = loadConfig(
      [
        '--redis-cluster-nodes',
        'node-0:6379',
        '--redis-username=relay',
        '--redis-password',
        'pw',
        '--redis-tls',
      ],
      { ...base, ...cluster },
    );
    expect(redisCluster.cluster?.redis).toEqual({
      clusterNodes: [{ host: 'node-0', port: 6379 }],
      keyPrefix: 'nbrelay',
      username: 'relay',
      password: 'pw',
      tls: true,
    });
    // URL mode: rediss:// is the TLS switch; a CA file may come with it.
    const url = loadConfig([], {
      ...base,
      ...cluster,
      NB_REDIS_URL: 'rediss://:url-pw@redis:6380/0',
      NB_REDIS_PASSWORD: 'other-pw',
      NB_REDIS_TLS_CA_FILE: '/ca.pem',
    });
    expect(url.cluster?.redis).toEqual({
      url: 'rediss://:url-pw@redis:6380/0',
      keyPrefix: 'nbrelay',
      password: 'other-pw',
      tlsCaFile: '/ca.pem',
    });
    expect(
      loadConfig([], { ...base, ...cluster, NB_REDIS_URL: 'redis://redis:6379' }).cluster?.redis,
    ).toEqual({ url: 'redis://redis:6379', keyPrefix: 'nbrelay' });
  });

  const redisCluster = { NB_CLUSTER_SECRET: 'c', NB_MESH_ADVERTISE_ADDRESS: '1.2.3.4:7946' };
  const badRedisAuth: [Record<string, string>, string][] = [
    [{ NB_REDIS_URL: 'redis://x', NB_REDIS_TLS: 'true' }, 'NB_REDIS_TLS'],
    [{ NB_REDIS_SENTINELS: 's:26379', NB_REDIS_TLS: 'maybe' }, 'NB_REDIS_TLS'],
    [{ NB_REDIS_URL: 'redis://x', NB_REDIS_SENTINEL_PASSWORD: 'secret-value' }, 'NB_REDIS_SENTINEL_PASSWORD'],
    [
      { NB_REDIS_CLUSTER_NODES: 'n:6379', NB_REDIS_SENTINEL_PASSWORD: 'secret-value' },
      'NB_REDIS_SENTINEL_PASSWORD',
    ],
    [{ NB_REDIS_SENTINEL_PASSWORD: 'secret-value' }, 'NB_REDIS_SENTINEL_PASSWORD'],
    [{ NB_REDIS_SENTINELS: 's:26379', NB_REDIS_USERNAME: 'relay' }, 'NB_REDIS_USERNAME'],
    [{ NB_REDIS_URL: 'redis://x', NB_REDIS_TLS_CA_FILE: '/ca.pem' }, 'NB_REDIS_TLS_CA_FILE'],
    [{ NB_REDIS_SENTINELS: 's:26379', NB_REDIS_TLS_CA_FILE: '/ca.pem' }, 'NB_REDIS_TLS_CA_FILE'],
  ];
  it.each(badRedisAuth)('%o fails naming %s, without echoing secrets', (env, setting) => {
    let message = '';
    try {
      loadConfig([], { ...base, ...redisCluster, ...env });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`^${setting}: `));
    expect(message).not.toContain('\n');
    expect(message).not.toContain('secret-value');
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

  it('the CLI reports a Redis TLS misconfiguration on one line, and never prints Redis passwords', () => {
    const run = spawnSync(process.execPath, [CLI_PATH], {
      env: {
        PATH: process.env.PATH,
        ...base,
        NB_REDIS_URL: 'redis://:url-secret@redis:6379',
        NB_REDIS_PASSWORD: 'password-secret',
        NB_REDIS_TLS: 'true',
        NB_CLUSTER_SECRET: 'c',
        NB_MESH_ADVERTISE_ADDRESS: '1.2.3.4:7946',
      },
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      'nb-cluster-relay: NB_REDIS_TLS: with NB_REDIS_URL, use a rediss:// URL instead\n',
    );
    const help = spawnSync(process.execPath, [CLI_PATH, '--help'], {
      env: {
        PATH: process.env.PATH,
        NB_REDIS_PASSWORD: 'password-secret',
        NB_REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      },
      encoding: 'utf8',
    });
    expect(help.status).toBe(0);
    for (const name of [
      'NB_REDIS_USERNAME',
      'NB_REDIS_PASSWORD',
      'NB_REDIS_SENTINEL_PASSWORD',
      'NB_REDIS_TLS ',
      'NB_REDIS_TLS_CA_FILE',
      'credentials in NB_REDIS_URL win',
    ]) {
      expect(help.stdout).toContain(name);
    }
    expect(help.stdout).not.toMatch(/password-secret|sentinel-secret/);
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

  it("takes NetBird's one-letter flags and repeated --stun-ports as NetBird does", () => {
    const c = loadConfig(
      ['-l', '127.0.0.1:8443', '-e=relay.example.com:8443', '-sSECRET', '-H', ':9100', '--enable-stun'],
      {},
    );
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(c.exposedAddress).toBe('rel://relay.example.com:8443');
    expect(c.authSecret).toBe('SECRET');
    expect(c.healthListen).toEqual({ host: '', port: 9100 });
    const repeated = loadConfig(['--enable-stun', '--stun-ports', '3478', '--stun-ports=3479,3480'], base);
    expect(repeated.stun?.ports).toEqual([3478, 3479, 3480]);
  });

  it('refuses what NetBird refuses for STUN ports and Route 53, naming the setting', () => {
    const stun = { ...base, NB_ENABLE_STUN: 'true' };
    expect(() => loadConfig([], { ...stun, NB_STUN_PORTS: '3478,3478' })).toThrow(
      /^NB_STUN_PORTS: port 3478/,
    );
    expect(() => loadConfig([], { ...stun, NB_STUN_PORTS: '0' })).toThrow(/^NB_STUN_PORTS: port 0/);
    expect(() => loadConfig(['--letsencrypt-aws-route53'], base)).toThrow(/^NB_LETSENCRYPT_AWS_ROUTE53: /);
    expect(loadConfig([], { ...base, NB_LETSENCRYPT_AWS_ROUTE53: 'false' }).tls).toBeUndefined();
  });
});
