import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import {
  ConnectionHealth,
  describeRedisError,
  type ConnectionName,
} from '../../src/registry/redis-connection-health.js';
import { RedisRegistryMetrics } from '../../src/registry/redis-registry-metrics.js';
import { createRedisConnections } from '../../src/registry/redis/connections.js';
import { metricValue } from '../cluster/cluster-test-kit.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { recordingLogger } from './support/registry-parts.js';

const open: ConnectionHealth[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((health) => health.close()));
});

afterAll(async () => {
  await stopAllRedis();
});

function watch(url: string): {
  health: ConnectionHealth;
  changes: string[];
  messages: string[];
  metrics: Registry;
  lines: Record<string, unknown>[];
} {
  const metrics = new Registry();
  const changes: string[] = [];
  const messages: string[] = [];
  const { logger, lines } = recordingLogger();
  const health = new ConnectionHealth({
    connections: createRedisConnections({ url, keyPrefix: 't' }, 'health-test'),
    channel: 't:events',
    logger,
    metrics: new RedisRegistryMetrics(metrics),
    hooks: {
      onChange: (connection: ConnectionName, up: boolean) =>
        changes.push(`${connection}:${up ? 'up' : 'down'}`),
      onClusterNodeLost: () => changes.push('node_lost'),
      onMessage: (message) => messages.push(message),
    },
  });
  open.push(health);
  return { health, changes, messages, metrics, lines };
}

describe('ConnectionHealth', () => {
  it('reports both connections up, hands on published messages, and says why a connection is down', async () => {
    const server = await RedisServer.start();
    const { health, changes, messages, metrics, lines } = watch(server.url);
    expect(health.reason()).toMatch(/^redis unreachable$/);
    health.start();
    await expect.poll(() => health.reason()).toBeUndefined();
    expect([...changes].sort()).toEqual(['command:up', 'subscriber:up']);
    expect(await metricValue(metrics, 'relay_cluster_redis_up')).toBe(1);
    expect(await metricValue(metrics, 'relay_registry_event_subscription_up')).toBe(1);

    const publisher = new Redis(server.url);
    expect(await publisher.publish('t:events', 'hello')).toBe(1);
    publisher.disconnect();
    await expect.poll(() => messages).toEqual(['hello']);

    await server.kill();
    await expect.poll(() => health.reason()).toMatch(/^redis unreachable: .*ECONNREFUSED/);
    expect(await metricValue(metrics, 'relay_cluster_redis_up')).toBe(0);
    // The client retries every ≤500 ms: wait for three repeats of the same failure (debug lines)...
    const repeats = (): number =>
      lines.filter((line) => line.msg === 'redis connection error' && line.connection === 'command').length;
    await expect.poll(repeats, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    // ...which were logged at warn exactly once.
    const warned = lines.filter(
      (line) => line.msg === 'redis connection failed; retrying' && line.connection === 'command',
    );
    expect(warned).toHaveLength(1);
    // The failed command (AUTH would carry the password) is never logged, only its message.
    expect(JSON.stringify(lines)).not.toContain('"command":{');

    await server.restart();
    await expect.poll(() => health.reason(), { timeout: 10_000 }).toBeUndefined();
    expect(changes.filter((change) => change === 'command:up')).toHaveLength(2);
    expect(lines.filter((line) => line.msg === 'redis command connection ready')).toHaveLength(2);
  });

  it('close() marks both down without a warning', async () => {
    const server = await RedisServer.start();
    const { health, changes, lines } = watch(server.url);
    health.start();
    await expect.poll(() => health.reason()).toBeUndefined();
    await health.close();
    expect(changes.slice(-2).sort()).toEqual(['command:down', 'subscriber:down']);
    expect(lines.filter((line) => (line.level as number) >= 40)).toEqual([]);
    await server.stop();
  });
});

describe('describeRedisError', () => {
  it('names the settings to check on an authentication failure', () => {
    expect(describeRedisError(new Error('WRONGPASS invalid username-password pair'))).toBe(
      'authentication failed (WRONGPASS invalid username-password pair); check NB_REDIS_USERNAME / NB_REDIS_PASSWORD (or the credentials in NB_REDIS_URL)',
    );
    expect(describeRedisError(new Error('Sentinel: NOAUTH Authentication required'))).toMatch(
      /check NB_REDIS_SENTINEL_PASSWORD$/,
    );
  });

  it("keeps a cluster's last node error and drops ioredis's retry note", () => {
    const err = Object.assign(new Error('Failed to refresh slots cache. Retrying from scratch after 50ms.'), {
      lastNodeError: new Error('connect ECONNREFUSED 127.0.0.1:1'),
    });
    expect(describeRedisError(err)).toBe(
      'Failed to refresh slots cache. (last node error: connect ECONNREFUSED 127.0.0.1:1)',
    );
    expect(describeRedisError('plain')).toBe('plain');
  });
});
