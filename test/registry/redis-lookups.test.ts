import { beforeEach, describe, expect, it } from 'vitest';
import { BackgroundLookups } from '../../src/registry/redis-lookups.js';
import { peer } from '../cluster/cluster-test-kit.js';
import { partsOnPrivateRedis, commandCalls, eventsOf, type Parts } from './support/registry-parts.js';

let parts: Parts;
let connected: boolean;
let lookups: BackgroundLookups;
const NEGATIVE_TTL_MS = 60_000;

const fixture = partsOnPrivateRedis('A', 'E1');

beforeEach(() => {
  parts = fixture.parts;
  connected = true;
  lookups = new BackgroundLookups({
    state: parts.state,
    connected: () => connected,
    negativeTtlMs: NEGATIVE_TTL_MS,
  });
});

describe('BackgroundLookups', () => {
  it('a peer missing from the cache is read from Redis and announced through the route cache', async () => {
    const p = peer('elsewhere');
    const { token } = await parts.store.register(p, 'B', 'E1', 60);
    lookups.missing(p);
    await expect.poll(() => parts.state.routes.get(p)?.instance).toBe('B');
    expect(eventsOf(parts.events, p)).toEqual([`online:B:${token}`]);
  });

  it('remembers "not registered": one GET for any number of misses within the TTL, another after it', async () => {
    const absent = peer('absent');
    const before = await commandCalls(fixture.redis, 'get');
    lookups.missing(absent);
    await expect.poll(() => lookups.running).toBe(0);
    for (let i = 0; i < 10; i++) lookups.missing(absent);
    expect(lookups.running).toBe(0);
    expect(await commandCalls(fixture.redis, 'get')).toBe(before + 1);

    lookups.purgeExpired(Date.now() + NEGATIVE_TTL_MS + 1);
    lookups.missing(absent);
    expect(lookups.running).toBe(1);
    await expect.poll(() => lookups.running).toBe(0);
    expect(await commandCalls(fixture.redis, 'get')).toBe(before + 2);
    expect(parts.events).toEqual([]);
  });

  it('asks nothing while Redis is down, and at most one lookup per peer at a time', async () => {
    connected = false;
    lookups.missing(peer('x'));
    expect(lookups.running).toBe(0);
    connected = true;
    lookups.missing(peer('x'));
    lookups.missing(peer('x'));
    lookups.missing(peer('y'));
    expect(lookups.running).toBe(2);
    await expect.poll(() => lookups.running).toBe(0);
  });

  it('verify: a route the mesh calls stale goes offline when Redis no longer has it', async () => {
    const p = peer('stale');
    const { token } = await parts.store.register(p, 'B', 'E1', 60);
    parts.state.applyRoute(p, { instance: 'B', token, session: token }, 'E1');
    await fixture.redis.flushall();
    // Another instance than the cached one said "not here": nothing to verify.
    lookups.verify(p, 'C');
    expect(lookups.running).toBe(0);
    lookups.verify(p, 'B');
    await expect.poll(() => eventsOf(parts.events, p)).toEqual([`online:B:${token}`, `offline:B:${token}`]);
  });

  it('verify: a route replaced in Redis is replaced in the cache (offline old, online new)', async () => {
    const p = peer('moved');
    const old = await parts.store.register(p, 'B', 'E1', 60);
    parts.state.applyRoute(p, { instance: 'B', token: old.token, session: old.token }, 'E1');
    const moved = await parts.store.register(p, 'C', 'E1', 60);
    lookups.verify(p, 'B');
    await expect
      .poll(() => eventsOf(parts.events, p))
      .toEqual([`online:B:${old.token}`, `offline:B:${old.token}`, `online:C:${moved.token}`]);
  });
});
