import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../../src/protocol/peer-id.js';
import { RedisKeys, printedPeer } from '../../../src/registry/redis/keys.js';
import { runScript } from '../../../src/registry/redis/scripts.js';
import { RedisServer, stopAllRedis } from '../../support/redis-server.js';

const keys = new RedisKeys('t');
const peer = printedPeer(peerKeyFromBytes(peerIdFromIdentifier('script-peer')));
const routeKeys = [keys.route(peer), keys.tokenFloor(peer), keys.legacyTokenFloor(peer)];

let server: RedisServer;
let redis: Redis;
let listener: Redis;
const received: string[] = [];

const register = async (instance: string, ttl = 3600): Promise<[string, string | null]> =>
  (await runScript(redis, 'nbRegister', routeKeys, [instance, peer, 'E1', ttl, keys.events])) as [
    string,
    string | null,
  ];
const unregister = async (token: string): Promise<number> =>
  (await runScript(
    redis,
    'nbCompareAndDelete',
    [keys.route(peer)],
    ['token', token, peer, 'E1', keys.events],
  )) as number;

async function waitForMessages(count: number): Promise<string[]> {
  await expect.poll(() => received.length, { timeout: 5_000, interval: 5 }).toBeGreaterThanOrEqual(count);
  return received.splice(0, count);
}

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
  listener = new Redis(server.url);
  listener.on('message', (_channel: string, message: string) => received.push(message));
  await listener.subscribe(keys.events);
});

afterAll(async () => {
  redis?.disconnect();
  listener?.disconnect();
  await stopAllRedis();
});

beforeEach(async () => {
  await redis.flushall();
  received.length = 0;
});

describe('register.lua', () => {
  it('hands out strictly increasing tokens and stores token|instance|session', async () => {
    let last = 0n;
    for (let i = 0; i < 200; i++) {
      const [token] = await register(i % 2 ? 'A' : 'B');
      expect(BigInt(token)).toBeGreaterThan(last);
      last = BigInt(token);
    }
    const [stored, floor] = await redis.mget(...routeKeys);
    expect(stored).toBe(`${last}|A|${last}`);
    expect(floor).toBe(String(last));
    // Tokens start at the Redis clock in microseconds and must stay exact in a double.
    expect(last).toBeLessThan(2n ** 53n);
    expect(last).toBeGreaterThan(BigInt(Date.now() - 60_000) * 1000n);
  });

  it('publishes offline(old) then online(new) on replace, in that order', async () => {
    const [first] = await register('A');
    expect(await waitForMessages(1)).toEqual([
      expect.stringMatching(new RegExp(`^on\\|${escape(peer)}\\|${first}\\|A\\|${first}\\|E1\\|\\d+$`)),
    ]);
    for (let i = 0; i < 50; i++) {
      const [token, previous] = await register(i % 2 ? 'A' : 'B');
      expect(previous).not.toBeNull();
      const [off, on] = await waitForMessages(2);
      expect(off).toMatch(new RegExp(`^off\\|${escape(peer)}\\|${escape(previous!)}\\|E1\\|\\d+$`));
      expect(on).toMatch(new RegExp(`^on\\|${escape(peer)}\\|${token}\\|`));
    }
  });

  it('keeps tokens increasing after the token floor expired', async () => {
    const [first] = await register('A', 1);
    expect(await redis.ttl(keys.tokenFloor(peer))).toBeGreaterThan(0);
    expect(await unregister(first)).toBe(1);
    // Redis expires it on its own clock (1 s): wait for that, not for a guessed time.
    await expect.poll(() => redis.exists(keys.tokenFloor(peer)), { timeout: 5_000, interval: 50 }).toBe(0);
    const [second] = await register('A', 1);
    expect(BigInt(second)).toBeGreaterThan(BigInt(first));
  });

  it('honours and keeps current the per-peer floor of an earlier release, never creating one', async () => {
    const [first] = await register('A');
    expect(await redis.exists(keys.legacyTokenFloor(peer))).toBe(0);
    // An earlier release's pod handed out a token ahead of this clock (its Redis clock was ahead).
    const ahead = BigInt(first) + 3_600_000_000n;
    await redis.set(keys.legacyTokenFloor(peer), String(ahead), 'EX', 60);
    const [second] = await register('B');
    expect(BigInt(second)).toBe(ahead + 1n);
    expect(await redis.get(keys.legacyTokenFloor(peer))).toBe(second);
    expect(await redis.ttl(keys.legacyTokenFloor(peer))).toBeGreaterThan(60);
  });
});

describe('compare-and-delete.lua by token (unregister)', () => {
  it('is a no-op for a stale token and removes the current one', async () => {
    const [old] = await register('A');
    const [current] = await register('B');
    await waitForMessages(3);
    expect(await unregister(old)).toBe(0);
    expect(await redis.get(keys.route(peer))).toBe(`${current}|B|${current}`);
    // Had the stale call published anything, it would be the first message here.
    expect(await unregister(current)).toBe(1);
    expect(await redis.exists(keys.route(peer))).toBe(0);
    expect(await waitForMessages(1)).toEqual([
      expect.stringMatching(new RegExp(`^off\\|${escape(peer)}\\|${current}\\|B\\|`)),
    ]);
    expect(await unregister(current)).toBe(0);
  });
});

describe('compare-and-delete.lua by instance (reaping)', () => {
  it('removes only a session of the dead instance', async () => {
    const [token] = await register('alive');
    const reap = async (instance: string): Promise<number> =>
      (await runScript(
        redis,
        'nbCompareAndDelete',
        [keys.route(peer)],
        ['instance', instance, peer, 'E1', keys.events],
      )) as number;
    expect(await reap('dead')).toBe(0);
    expect(await redis.get(keys.route(peer))).toBe(`${token}|alive|${token}`);
    expect(await reap('alive')).toBe(1);
    expect(await redis.exists(keys.route(peer))).toBe(0);
    expect(await reap('alive')).toBe(0);
  });
});

describe('restore.lua', () => {
  const restore = async (
    instance: string,
    token: string,
    session: string,
  ): Promise<[string | null, string | null]> =>
    (await runScript(redis, 'nbRestore', routeKeys, [
      instance,
      peer,
      'E2',
      3600,
      keys.events,
      token,
      session,
    ])) as [string | null, string | null];

  it('puts back a lost session with a newer token, keeping its session id', async () => {
    const [token] = await register('A');
    await redis.del(keys.route(peer));
    const [restored, previous] = await restore('A', token, token);
    expect(previous).toBeNull();
    expect(BigInt(restored!)).toBeGreaterThan(BigInt(token));
    expect(await redis.get(keys.route(peer))).toBe(`${restored}|A|${token}`);
    // Already there: nothing changes.
    expect(await restore('A', restored!, token)).toEqual([restored, null]);
  });

  it('never overrides a newer session', async () => {
    const [old] = await register('A');
    const [newer] = await register('B');
    const [restored, current] = await restore('A', old, old);
    expect(restored).toBeNull();
    expect(current).toBe(`${newer}|B|${newer}`);
    expect(await redis.get(keys.route(peer))).toBe(`${newer}|B|${newer}`);
  });
});

describe('membership scripts', () => {
  const clusterKeys = [keys.epoch, keys.members, keys.memberInfo, keys.pods];
  const beat = async (instance: string, pod: string): Promise<[string, number, string | null, string[]]> =>
    (await runScript(redis, 'nbHeartbeat', clusterKeys, [
      instance,
      `10.0.0.1:${pod}`,
      pod,
      `epoch-of-${instance}`,
    ])) as [string, number, string | null, string[]];

  it('creates the epoch once, reports membership and the predecessor of a pod name', async () => {
    expect(await beat('i1', 'pod-a')).toEqual(['epoch-of-i1', 0, null, ['i1', '10.0.0.1:pod-a|pod-a']]);
    expect((await beat('i1', 'pod-a')).slice(0, 3)).toEqual(['epoch-of-i1', 1, null]);
    expect((await beat('i2', 'pod-a')).slice(0, 3)).toEqual(['epoch-of-i1', 0, 'i1']);
    const [epoch] = (await runScript(redis, 'nbEpoch', [keys.epoch], ['other'])) as [string, number];
    expect(epoch).toBe('epoch-of-i1');
  });

  it('lists expired members and forgets them unless they beat again', async () => {
    await beat('i1', 'pod-a');
    await beat('i2', 'pod-b');
    expect(await runScript(redis, 'nbExpiredMembers', [keys.members], [10_000])).toEqual([]);
    // i1's last beat 120 ms ago by the Redis clock, without waiting: its score moves back.
    const i1BeatMs = Number(await redis.zscore(keys.members, 'i1'));
    await redis.zadd(keys.members, 'XX', i1BeatMs - 120, 'i1');
    await beat('i2', 'pod-b');
    expect(await runScript(redis, 'nbExpiredMembers', [keys.members], [100])).toEqual(['i1']);
    const forget = async (instance: string, force = '0'): Promise<number> =>
      (await runScript(
        redis,
        'nbForgetMember',
        [keys.members, keys.memberInfo, keys.pods],
        [instance, 100, force],
      )) as number;
    expect(await forget('i2')).toBe(0);
    expect(await forget('i1')).toBe(1);
    expect(await redis.zrange(keys.members, 0, -1)).toEqual(['i2']);
    expect(await redis.hkeys(keys.memberInfo)).toEqual(['i2']);
    expect(await redis.hgetall(keys.pods)).toEqual({ 'pod-b': 'i2' });
    expect(await forget('i2', '1')).toBe(1);
    expect(await redis.exists(keys.members, keys.memberInfo, keys.pods)).toBe(0);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
