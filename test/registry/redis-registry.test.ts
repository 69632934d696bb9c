import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { printedPeer, RedisKeys } from '../../src/registry/redis/keys.js';
import type { RedisRegistry } from '../../src/registry/redis-registry.js';
import { eventually, metricValue, peer, redisOptions, startRegistry } from '../cluster/cluster-test-kit.js';
import { createRedisConnections } from '../../src/registry/redis/connections.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { TcpForwarder } from '../support/tcp-forwarder.js';

let server: RedisServer;
let inspect: Redis;
const keys = new RedisKeys('nbtest');
const open: RedisRegistry[] = [];

async function registry(
  instance: string,
  connections?: Parameters<typeof startRegistry>[2],
): Promise<Awaited<ReturnType<typeof startRegistry>>> {
  const started = await startRegistry(redisOptions(server.url), instance, connections);
  open.push(started.registry);
  return started;
}

beforeAll(async () => {
  server = await RedisServer.start();
  inspect = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: null });
  inspect.on('error', () => {});
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
  await inspect.flushall().catch(() => {});
});

afterAll(async () => {
  inspect?.disconnect();
  await stopAllRedis();
});

describe('RedisRegistry on one Redis', () => {
  it('gives two registries the same ordered events; a stale unregister is a no-op', async () => {
    const a = await registry('A');
    const b = await registry('B');
    const p = peer('ordered');
    const first = await a.registry.register(p);
    await b.events.waitFor(() => b.events.of(p).length === 1);
    expect(b.registry.locate(p)).toMatchObject({ instance: 'A', token: first.token });

    const second = await b.registry.register(p);
    expect(second.token).toBeGreaterThan(first.token);
    for (const log of [a.events, b.events]) {
      await log.waitFor(() => log.of(p).length === 3);
      expect(log.of(p)).toEqual(['online:A', 'offline:A', 'online:B']);
    }
    expect(a.registry.locate(p)).toMatchObject({ instance: 'B', token: second.token });

    expect(await a.registry.unregister(first)).toBe(false);
    expect(await inspect.get(keys.route(printedPeer(p)))).toBe(`${second.token}|B|${second.token}`);
    expect(await metricValue(a.metrics, 'relay_registry_stale_cleanups_ignored_total')).toBe(1);

    expect(await b.registry.unregister(second)).toBe(true);
    for (const log of [a.events, b.events]) {
      await log.waitFor(() => log.of(p).length === 4);
      expect(log.of(p).at(-1)).toBe('offline:B');
    }
    expect(await inspect.exists(keys.route(printedPeer(p)))).toBe(0);
    // Nothing but the token floor (with a TTL) remains of the peer.
    // The default floor life, 7 days (TTL rounds to the second).
    expect([604_799, 604_800]).toContain(await inspect.ttl(keys.tokenFloor(printedPeer(p))));
  });

  it('orders a burst of alternating reconnects the same way on every registry', async () => {
    const a = await registry('A');
    const b = await registry('B');
    const watcher = await registry('W');
    const p = peer('burst');
    let registration = await a.registry.register(p);
    for (let i = 0; i < 100; i++) {
      const next = await (i % 2 ? a : b).registry.register(p);
      expect(next.token).toBeGreaterThan(registration.token);
      registration = next;
    }
    await watcher.events.waitFor(() => watcher.events.of(p).length === 201);
    const kinds = watcher.events.all.filter((e) => e.peer === p).map((e) => e.kind);
    expect(kinds).toEqual(['online', ...Array.from({ length: 100 }, () => ['offline', 'online']).flat()]);
    const tokens = watcher.events.all.filter((e) => e.kind === 'online').map((e) => e.token);
    expect([...tokens].sort((x, y) => x - y)).toEqual(tokens);
  });

  it('answers locate() misses with one background lookup', async () => {
    const a = await registry('A');
    const p = peer('late-joiner');
    await a.registry.register(p);
    const b = await registry('B');
    expect(b.registry.locate(p)).toMatchObject({ instance: 'A' }); // loaded by the first resync
    const unknown = peer('nobody');
    expect(b.registry.locate(unknown)).toBeUndefined();
    expect(await b.registry.lookup(unknown)).toBeUndefined();
  });

  it('re-registers local sessions after Redis restarts empty and tells the others', async () => {
    const a = await registry('A');
    const b = await registry('B');
    const pa = peer('restart-a');
    const pb = peer('restart-b');
    const ra = await a.registry.register(pa);
    const rb = await b.registry.register(pb);
    await a.events.waitFor(() => a.events.of(pb).length === 1);
    const epochBefore = a.registry.epoch;
    const started = Date.now();
    await server.restart();
    await eventually(
      () =>
        a.registry.notReadyReason() === undefined &&
        b.registry.notReadyReason() === undefined &&
        a.registry.epoch !== epochBefore,
      10_000,
    );
    await eventually(
      async () => (await inspect.exists(keys.route(printedPeer(pa)), keys.route(printedPeer(pb)))) === 2,
    );
    // How fast is bench:failover's business; the log line helps when reading a slow run.
    console.log(`registries converged ${Date.now() - started} ms after redis restarted empty`);
    // The relay reads registration.token: it follows the restore.
    expect(await inspect.get(keys.route(printedPeer(pa)))).toMatch(new RegExp(`^${ra.token}\\|A\\|`));
    expect(await inspect.get(keys.route(printedPeer(pb)))).toMatch(new RegExp(`^${rb.token}\\|B\\|`));
    expect(a.registry.locate(pb)).toMatchObject({ instance: 'B', token: rb.token });
    expect(b.registry.locate(pa)).toMatchObject({ instance: 'A', token: ra.token });
    expect(await metricValue(a.metrics, 'relay_registry_restored_sessions_total')).toBe(1);
    // The same sessions came back: nobody was told they went offline.
    expect(b.events.of(pa)).toEqual(['online:A']);
    // Unregister uses the restored token.
    expect(await a.registry.unregister(ra)).toBe(true);
  });

  it('after missing events while its subscription was down, resyncs and emits the differences in order', async () => {
    const a = await registry('A');
    const b = await registry('B');
    const gone = peer('gone-while-away');
    const moved = peer('moved-while-away');
    const rGone = await b.registry.register(gone);
    await b.registry.register(moved);
    await a.events.waitFor(() => a.events.of(gone).length === 1 && a.events.of(moved).length === 1);
    a.events.clear();
    // Cut A off from events only (its command connection stays up).
    const resyncs = (): Promise<number> =>
      metricValue(a.metrics, 'relay_registry_resyncs_total', { reason: 'subscription_reconnect' });
    const resyncsBefore = await resyncs();
    const subscriber = a.connections.subscriber;
    subscriber.disconnect(false);
    await eventually(() => a.registry.notReadyReason() !== undefined);
    expect(await b.registry.unregister(rGone)).toBe(true);
    const c = await registry('C');
    await c.registry.register(moved);
    await b.events.waitFor(() => b.events.of(moved).length === 3);
    expect(a.events.all).toEqual([]);
    await subscriber.connect();
    await eventually(() => a.registry.notReadyReason() === undefined);
    await a.events.waitFor(() => a.events.all.length === 3);
    expect(a.events.of(gone)).toEqual(['offline:B']);
    expect(a.events.of(moved)).toEqual(['offline:B', 'online:C']);
    expect(a.registry.locate(moved)).toMatchObject({ instance: 'C' });
    expect(await resyncs()).toBe(resyncsBefore + 1);
  });

  it('refuses registrations while Redis is unreachable and keeps routes; retries unregisters later', async () => {
    const a = await registry('A');
    const b = await registry('B');
    const kept = peer('kept');
    const rKept = await b.registry.register(kept);
    const rLocal = await a.registry.register(peer('local'));
    await a.events.waitFor(() => a.events.of(kept).length === 1);
    await server.kill();
    await eventually(() => a.registry.notReadyReason() !== undefined);
    await eventually(() => a.registry.notReadyReason()?.startsWith('redis unreachable'));
    // Refused at once, by the health state, not after trying Redis: the error is the readiness
    // reason, and no register command was attempted (an attempt is timed, whatever its outcome).
    await expect(a.registry.register(peer('newcomer'))).rejects.toThrow(
      /^peer registry unavailable: redis unreachable/,
    );
    const attempts = { operation: 'register', outcome: 'error' };
    expect(await metricValue(a.metrics, 'relay_registry_operation_duration_seconds', attempts)).toBe(0);
    // Routes survive the outage.
    expect(a.registry.locate(kept)).toMatchObject({ instance: 'B', token: rKept.token });
    // An unregister during the outage is not lost.
    expect(await a.registry.unregister(rLocal)).toBe(false);
    await server.restart();
    await eventually(
      () => a.registry.notReadyReason() === undefined && b.registry.notReadyReason() === undefined,
      10_000,
    );
    await eventually(async () => (await inspect.exists(keys.route(printedPeer(kept)))) === 1);
    expect(await inspect.exists(keys.route(printedPeer(peer('local'))))).toBe(0);
    expect(await inspect.exists(keys.route(printedPeer(peer('newcomer'))))).toBe(0);
  });

  it('leaves nothing behind when a register times out during a stall', async () => {
    const a = await registry('A');
    const p = peer('orphan');
    server.pause();
    const attempt = a.registry.register(p);
    await expect(attempt).rejects.toThrow();
    server.resume();
    // Whatever part of it ran once Redis woke up, no registration of ours remains.
    await eventually(async () => (await inspect.exists(keys.route(printedPeer(p)))) === 0, 5_000);
    expect(a.registry.locate(p)).toBeUndefined();
  });
});

describe('RedisRegistry when a newer session’s event overtakes our own reply', () => {
  it('does not keep a registration that a newer one on another instance had already replaced', async () => {
    // A's commands go through a slow path (a TCP forwarder adding latency), its event
    // subscription does not: B's registration, made after A's script ran, is announced to A
    // before A's own reply arrives — the race the chaos runs found across two pods.
    const forwarder = await TcpForwarder.start(server.port);
    try {
      const slow = createRedisConnections(redisOptions(`redis://127.0.0.1:${forwarder.port}`), 'test-A');
      const direct = createRedisConnections(redisOptions(server.url), 'test-A-events');
      const a = await registry('A', { ...slow, subscriber: direct.subscriber });
      const b = await registry('B');
      const p = peer('overtaken');
      const route = keys.route(printedPeer(p));
      forwarder.latencyMs = 400;
      const pendingA = a.registry.register(p);
      pendingA.catch(() => {}); // awaited below; a failure before then must not go unhandled
      await expect
        .poll(() => inspect.get(route).then(String), { interval: 5, timeout: 5_000 })
        .toMatch(/\|A\|/);
      const second = await b.registry.register(p);
      await a.events.waitFor(() => a.events.of(p).includes('online:B'));
      const first = await pendingA;

      expect(first.token).toBeLessThan(second.token);
      // Not ours: nothing to restore or to announce later, and the route stays B's.
      expect(a.registry.localSessionCount).toBe(0);
      expect(a.registry.locate(p)).toMatchObject({ instance: 'B', token: second.token });
      expect(await inspect.get(route)).toBe(`${second.token}|B|${second.token}`);
      await expect
        .poll(() => inspect.sismember(keys.instanceSessions('A'), printedPeer(p)), { timeout: 5_000 })
        .toBe(0);
    } finally {
      await forwarder.close();
    }
  });
});
