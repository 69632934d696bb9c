import pino from 'pino';
import { Registry } from 'prom-client';
import type { RedisOptions } from '../../src/config/cluster-options.js';
import { peerIdFromIdentifier, peerKeyFromBytes, type PeerKey } from '../../src/protocol/peer-id.js';
import type { PeerEvent, PeerRegistry } from '../../src/registry/peer-registry.js';
import { createRedisConnections, type RedisConnections } from '../../src/registry/redis/connections.js';
import { RedisKeys } from '../../src/registry/redis/keys.js';
import { RedisRegistryMetrics } from '../../src/registry/redis-registry-metrics.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';

/** Shared helpers of the cluster tests (registry and mesh level). */

export const silentLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function peer(name: string): PeerKey {
  return peerKeyFromBytes(peerIdFromIdentifier(name));
}

export function redisOptions(url: string, keyPrefix = 'nbtest'): RedisOptions {
  return { url, keyPrefix };
}

export async function startRegistry(
  options: RedisOptions,
  instanceId: string,
  connections: RedisConnections = createRedisConnections(options, `test-${instanceId}`),
): Promise<{ registry: RedisRegistry; metrics: Registry; events: EventLog; connections: RedisConnections }> {
  const metrics = new Registry();
  const registry = new RedisRegistry({
    connections,
    keys: new RedisKeys(options.keyPrefix),
    instanceId,
    logger: silentLogger,
    metrics: new RedisRegistryMetrics(metrics),
    restoreGraceMs: 100,
  });
  const events = new EventLog(registry);
  await registry.start(10_000);
  return { registry, metrics, events, connections };
}

/** Records a registry's events and lets a test await the next ones. */
export class EventLog {
  readonly all: PeerEvent[] = [];
  #waiters: (() => void)[] = [];

  constructor(registry: PeerRegistry) {
    registry.onEvent((event) => {
      this.all.push(event);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  clear(): void {
    this.all.length = 0;
  }

  /** Waits until `predicate` holds for the log; returns the matching events. */
  async waitFor(predicate: (events: PeerEvent[]) => boolean, timeoutMs = 5_000): Promise<PeerEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.all)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`events not seen in time; got ${JSON.stringify(this.summary())}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.all;
  }

  /** Events as "kind:instance" strings for one peer. */
  of(peerKey: PeerKey): string[] {
    return this.all
      .filter((event) => event.peer === peerKey)
      .map((event) => `${event.kind}:${event.instance}`);
  }

  summary(): string[] {
    return this.all.map((event) => `${event.kind}:${event.instance}:${event.token}`);
  }
}

export { metricValue } from '../support/metric-value.js';
export { eventually } from '../support/eventually.js';
