import { beforeEach, describe, expect, it } from 'vitest';
import { metricValue, peer } from '../cluster/cluster-test-kit.js';
import { partsOnPrivateRedis, eventsOf, type Parts } from './support/registry-parts.js';

let parts: Parts;

const fixture = partsOnPrivateRedis('A', 'E1');

beforeEach(() => {
  parts = fixture.parts;
});

describe('RegistryState', () => {
  it('compare-and-delete by the current token: the route goes, the cache says offline, the index forgets the peer', async () => {
    const p = peer('state-ours');
    const { token } = await parts.store.register(p, 'A', 'E1', 60);
    await parts.store.indexSession('A', p);
    parts.state.applyRoute(p, { instance: 'A', token, session: 1 }, 'E1');
    expect(await parts.state.compareAndDelete(p, token)).toBe(true);
    expect(await parts.store.readRoute(p)).toBeUndefined();
    expect(eventsOf(parts.events, p)).toEqual([`online:A:${token}`, `offline:A:${token}`]);
    // The index write is not awaited, but it was sent before compareAndDelete returned, on the
    // same connection as this read, which Redis therefore answers after it.
    expect(await parts.store.sessionCount('A')).toBe(0);
    expect(await metricValue(parts.metrics, 'relay_registry_stale_cleanups_ignored_total')).toBe(0);
  });

  it('keeps the index entry while a local session of the peer remains (a newer session of ours)', async () => {
    const p = peer('state-still-local');
    const { token } = await parts.store.register(p, 'A', 'E1', 60);
    await parts.store.indexSession('A', p);
    parts.state.sessions.add(p, token + 1);
    expect(await parts.state.compareAndDelete(p, token)).toBe(true);
    // Read on the connection a removal would have gone out on first (see above).
    expect(await parts.store.sessionCount('A')).toBe(1);
  });

  it('compare-and-delete by an older token: nothing changes, and it is counted as a stale clean-up', async () => {
    const p = peer('state-replaced');
    const old = await parts.store.register(p, 'A', 'E1', 60);
    const newer = await parts.store.register(p, 'B', 'E1', 60);
    parts.state.applyRoute(p, { instance: 'B', token: newer.token, session: 1 }, 'E1');
    expect(await parts.state.compareAndDelete(p, old.token)).toBe(false);
    expect((await parts.store.readRoute(p))?.token).toBe(newer.token);
    expect(eventsOf(parts.events, p)).toEqual([`online:B:${newer.token}`]);
    expect(await metricValue(parts.metrics, 'relay_registry_stale_cleanups_ignored_total')).toBe(1);
  });

  it('counts an event older than the cached route as stale and drops it', async () => {
    const p = peer('state-stale-event');
    parts.state.applyRoute(p, { instance: 'B', token: 20, session: 1 }, 'E1');
    parts.state.applyRoute(p, { instance: 'C', token: 10, session: 1 }, 'E1');
    parts.state.applyOffline(p, 10, 'E1');
    expect(eventsOf(parts.events, p)).toEqual(['online:B:20']);
    expect(await metricValue(parts.metrics, 'relay_registry_stale_events_dropped_total')).toBe(2);
  });
});
