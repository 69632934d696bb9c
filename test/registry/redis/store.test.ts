import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatPeerKey } from '../../../src/protocol/peer-id.js';
import { RedisKeys } from '../../../src/registry/redis/keys.js';
import { RedisStore } from '../../../src/registry/redis/store.js';
import { peer } from '../../cluster/cluster-test-kit.js';
import { RedisServer, stopAllRedis } from '../../support/redis-server.js';
import { commandCalls } from '../support/registry-parts.js';

const keys = new RedisKeys('t');
const p = peer('store-peer');
const printed = formatPeerKey(p);
let server: RedisServer;
let redis: Redis;
let store: RedisStore;

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
  store = new RedisStore({ redis, keys });
});

afterAll(async () => {
  redis?.disconnect();
  await stopAllRedis();
});

beforeEach(async () => {
  await redis.flushall();
});

describe('RedisStore routes', () => {
  it('register: returns the token and the decoded session it replaced', async () => {
    const first = await store.register(p, 'A', 'E1', 60);
    expect(first.previous).toBeUndefined();
    const second = await store.register(p, 'B', 'E1', 60);
    expect(second.token).toBeGreaterThan(first.token);
    expect(second.previous).toEqual({ token: first.token, instance: 'A', session: first.token });
    expect(await store.readRoute(p)).toEqual({ token: second.token, instance: 'B', session: second.token });
    expect(await redis.ttl(keys.tokenFloor(printed))).toBe(60);
  });

  it('restore: intact, written back with a higher token, or superseded by a newer session', async () => {
    const { token } = await store.register(p, 'A', 'E1', 60);
    const ours = { instance: 'A', token, session: token };
    expect(await store.restore(p, ours, 'E1', 60)).toEqual({ kind: 'restored', token, previous: undefined });

    await redis.del(keys.route(printed));
    const back = await store.restore(p, ours, 'E1', 60);
    expect(back).toMatchObject({ kind: 'restored', previous: undefined });
    const restoredToken = (back as { token: number }).token;
    expect(restoredToken).toBeGreaterThan(token);
    // The session id survives the restore.
    expect(await store.readRoute(p)).toEqual({ token: restoredToken, instance: 'A', session: token });

    const newer = await store.register(p, 'B', 'E1', 60);
    expect(await store.restore(p, { ...ours, token: restoredToken }, 'E1', 60)).toEqual({
      kind: 'superseded',
      current: { token: newer.token, instance: 'B', session: newer.token },
    });
  });

  it('compare-and-delete by token and by instance remove only a matching route', async () => {
    const { token } = await store.register(p, 'A', 'E1', 60);
    expect(await store.deleteRouteIfToken(p, token - 1, 'E1')).toBe(false);
    expect(await store.deleteRouteIfInstance(printed, 'B', 'E1')).toBe(false);
    expect(await store.deleteRouteIfInstance(printed, 'A', 'E1')).toBe(true);
    expect(await store.readRoute(p)).toBeUndefined();
    const again = await store.register(p, 'A', 'E1', 60);
    expect(await store.deleteRouteIfToken(p, again.token, 'E1')).toBe(true);
    expect(await store.deleteRouteIfToken(p, again.token, 'E1')).toBe(false);
  });

  it('scanRoutes returns every route and skips values that are not routes', async () => {
    const peers = Array.from({ length: 2_500 }, (_, i) => peer(`scan-${i}`));
    for (const one of peers) await store.register(one, 'A', 'E1', 60);
    await redis.set(keys.route('garbage'), 'not a route');
    const routes = await store.scanRoutes();
    expect(routes.size).toBe(2_500);
    expect(routes.get(peers[1_234]!)?.instance).toBe('A');
  });

  it('runs its scripts again after the server forgot them (SCRIPT FLUSH: EVALSHA falls back to EVAL)', async () => {
    await store.register(p, 'A', 'E1', 60);
    await redis.script('FLUSH');
    const evalsBefore = await commandCalls(redis, 'eval');
    await store.register(p, 'B', 'E1', 60);
    expect(await commandCalls(redis, 'eval')).toBe(evalsBefore + 1);
    expect((await store.readRoute(p))?.instance).toBe('B');
  });
});

describe('RedisStore membership and reaping', () => {
  it('heartbeat: creates the epoch, tells whether we were a member, names the predecessor of our pod', async () => {
    const first = await store.heartbeat('i1', { meshAddress: '[fd00::1]:7000', podName: 'relay-0' }, 'E1');
    expect(first).toEqual({
      epoch: 'E1',
      wasMember: false,
      predecessor: undefined,
      members: new Map([['i1', { meshAddress: '[fd00::1]:7000', podName: 'relay-0' }]]),
    });
    expect(
      (await store.heartbeat('i1', { meshAddress: '[fd00::1]:7000', podName: 'relay-0' }, 'E2')).wasMember,
    ).toBe(true);
    const restarted = await store.heartbeat('i2', { meshAddress: '10.0.0.9:7000', podName: 'relay-0' }, 'E3');
    expect(restarted.epoch).toBe('E1');
    expect(restarted.predecessor).toBe('i1');
    expect(await store.instanceOfPod('relay-0')).toBe('i2');
    expect(await store.ensureEpoch('E9')).toBe('E1');
    expect(await store.readEpoch()).toBe('E1');
  });

  it('reaping: one lock holder; sessions of the instance removed, exact count; member and index forgotten', async () => {
    await store.heartbeat('dead', { meshAddress: '10.0.0.1:7000', podName: 'relay-1' }, 'E1');
    const mine = [peer('r1'), peer('r2'), peer('r3')];
    for (const one of mine) {
      await store.indexSession('dead', one);
      await store.register(one, 'dead', 'E1', 60);
    }
    // Taken over by another instance meanwhile: not the dead one's to remove.
    await store.register(mine[2]!, 'alive', 'E1', 60);
    expect(await store.sessionCount('dead')).toBe(3);

    expect(await store.lockReap('dead', 'me', 5_000)).toBe(true);
    expect(await store.lockReap('dead', 'other', 5_000)).toBe(false);
    expect(await store.deleteSessionsOf('dead')).toBe(2);
    expect((await store.readRoute(mine[2]!))?.instance).toBe('alive');

    // It beat just now: 'expired' semantics keep it; 'even if alive' removes it.
    expect(await store.forgetMember('dead', 10_000, { evenIfAlive: false })).toBe(false);
    expect(await store.sessionCount('dead')).toBe(3);
    expect(await store.forgetMember('dead', 10_000, { evenIfAlive: true })).toBe(true);
    expect(await store.sessionCount('dead')).toBe(0);
    expect(await store.instanceOfPod('relay-1')).toBeUndefined();
    expect(await store.expiredMembers(0, 'me')).toEqual([]);
  });
});
