import { beforeEach, describe, expect, it } from 'vitest';
import { formatPeerKey } from '../../src/protocol/peer-id.js';
import { DeferredCleanups } from '../../src/registry/redis-deferred-cleanups.js';
import { metricValue, peer } from '../cluster/cluster-test-kit.js';
import { RedisServer } from '../support/redis-server.js';
import {
  buildParts,
  partsOnPrivateRedis,
  eventsOf,
  failFastClient,
  type Parts,
} from './support/registry-parts.js';

let parts: Parts;
let cleanups: DeferredCleanups;

const fixture = partsOnPrivateRedis('A', 'E1');

beforeEach(() => {
  parts = fixture.parts;
  cleanups = new DeferredCleanups(parts.state);
});

describe('DeferredCleanups', () => {
  it('a deferred unregister removes the route when it still holds the token, and is a counted no-op when not', async () => {
    const p = peer('deferred');
    const q = peer('replaced');
    const ours = await parts.store.register(p, 'A', 'E1', 60);
    const old = await parts.store.register(q, 'A', 'E1', 60);
    const newer = await parts.store.register(q, 'B', 'E1', 60);
    cleanups.unregisterLater(p, ours.token);
    cleanups.unregisterLater(q, old.token);
    expect(cleanups.pending).toBe(2);
    await cleanups.run();
    expect(cleanups.pending).toBe(0);
    expect(await parts.store.readRoute(p)).toBeUndefined();
    expect((await parts.store.readRoute(q))?.token).toBe(newer.token);
    expect(await metricValue(parts.metrics, 'relay_registry_stale_cleanups_ignored_total')).toBe(1);
  });

  it('a suspect registration of ours that no session holds is removed as an orphan; one a session holds stays', async () => {
    const orphan = peer('orphan');
    const held = peer('held');
    await parts.store.register(orphan, 'A', 'E1', 60);
    const kept = await parts.store.register(held, 'A', 'E1', 60);
    parts.state.sessions.add(held, kept.token);
    cleanups.suspect(orphan);
    cleanups.suspect(held);
    await cleanups.run();
    expect(cleanups.pending).toBe(0);
    expect(await parts.store.readRoute(orphan)).toBeUndefined();
    expect(await parts.store.readRoute(held)).toEqual({
      token: kept.token,
      instance: 'A',
      session: kept.token,
    });
    expect(await metricValue(parts.metrics, 'relay_registry_orphans_removed_total')).toBe(1);
    expect(eventsOf(parts.events, orphan)).toEqual([]);
  });

  it('leaves a peer with an operation in flight for the next run', async () => {
    const p = peer('busy');
    const { token } = await parts.store.register(p, 'A', 'E1', 60);
    cleanups.unregisterLater(p, token);
    await parts.state.sessions.during(p, () => cleanups.run());
    expect(cleanups.pending).toBe(1);
    expect((await parts.store.readRoute(p))?.token).toBe(token);
    await cleanups.run();
    expect(cleanups.pending).toBe(0);
  });

  it('keeps everything while Redis is away and finishes once it is back', async () => {
    const own = await RedisServer.start();
    const client = await failFastClient(own.url);
    try {
      const local = buildParts(client, 'A');
      local.state.epoch = 'E1';
      const pending = new DeferredCleanups(local.state);
      const p = peer('later');
      const { token } = await local.store.register(p, 'A', 'E1', 60);
      pending.unregisterLater(p, token);
      pending.suspect(peer('suspect'));
      await own.kill();
      await expect.poll(() => client.status).not.toBe('ready');
      await pending.run();
      expect(pending.pending).toBe(2);
      await own.restart();
      await expect.poll(() => client.status).toBe('ready');
      // The restarted server is empty: put the route back as it was.
      await client.set(local.store.keys.route(formatPeerKey(p)), `${token}|A|${token}`);
      await pending.run();
      expect(pending.pending).toBe(0);
      expect(await local.store.readRoute(p)).toBeUndefined();
    } finally {
      client.disconnect();
      await own.stop();
    }
  });
});
