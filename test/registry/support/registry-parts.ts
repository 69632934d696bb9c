import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { PeerKey } from '../../../src/protocol/peer-id.js';
import { LocalSessions } from '../../../src/registry/local-sessions.js';
import type { PeerEvent } from '../../../src/registry/peer-registry.js';
import { RedisRegistryMetrics } from '../../../src/registry/redis-registry-metrics.js';
import { RegistryState } from '../../../src/registry/redis-registry-state.js';
import { RouteCache } from '../../../src/registry/redis-route-cache.js';
import { RedisKeys } from '../../../src/registry/redis/keys.js';
import { RedisStore } from '../../../src/registry/redis/store.js';
import { RedisServer, stopAllRedis } from '../../support/redis-server.js';

/** The shared state of the registry's parts on a real Redis, with every emitted event recorded. */
export interface Parts {
  state: RegistryState;
  store: RedisStore;
  events: PeerEvent[];
  metrics: Registry;
}

export function buildParts(redis: Redis, instanceId: string, logger: Logger = silent): Parts {
  const metrics = new Registry();
  const registryMetrics = new RedisRegistryMetrics(metrics);
  const events: PeerEvent[] = [];
  const store = new RedisStore({ redis, keys: new RedisKeys('t') });
  const state = new RegistryState({
    instanceId,
    store,
    routes: new RouteCache((event) => events.push(event)),
    sessions: new LocalSessions(registryMetrics.localPeers),
    metrics: registryMetrics,
    logger,
  });
  return { state, store, events, metrics };
}

export const silent = pino({ level: 'silent' });

/** A file's private redis-server, and parts built anew on it (flushed first) before each test. */
export interface PartsFixture {
  readonly redis: Redis;
  readonly parts: Parts;
}

/**
 * Registers the hooks that give each test of the calling file fresh parts on a private
 * redis-server. Call at the top of the file, before the file's own beforeEach: hooks run in
 * the order they are registered, so the file's hook sees this test's parts.
 */
export function partsOnPrivateRedis(instanceId: string, epoch?: string): PartsFixture {
  let redis: Redis | undefined;
  let parts: Parts | undefined;
  beforeAll(async () => {
    const server = await RedisServer.start();
    redis = await failFastClient(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await stopAllRedis();
  });
  beforeEach(async () => {
    await redis!.flushall();
    parts = buildParts(redis!, instanceId);
    if (epoch !== undefined) parts.state.epoch = epoch;
  });
  return {
    get redis() {
      return redis!;
    },
    get parts() {
      return parts!;
    },
  };
}

/** A client that fails at once while Redis is away, like the registry's own. */
export async function failFastClient(url: string): Promise<Redis> {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
    lazyConnect: true,
    retryStrategy: () => 50,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Events as "kind:instance:token" strings for one peer. */
export function eventsOf(events: readonly PeerEvent[], peer: PeerKey): string[] {
  return events.filter((event) => event.peer === peer).map((e) => `${e.kind}:${e.instance}:${e.token}`);
}

/** How many times Redis ran `command` (INFO commandstats), to prove a part did or did not ask. */
export async function commandCalls(redis: Redis, command: string): Promise<number> {
  const info = await redis.info('commandstats');
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

/** Log lines as parsed objects, at debug level and up. */
export function recordingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}
