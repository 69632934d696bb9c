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
  const clusterKeys = [
    keys.epoch,
    keys.members,
    keys.memberInfo,
    keys.pods,
    keys.beatCounter,
    keys.beatStamps,
  ];
  const stampsKept = 4;
  const beat = async (instance: string, pod: string): Promise<[string, number, string | null, string[]]> =>
    (await runScript(redis, 'nbHeartbeat', clusterKeys, [
      instance,
      `10.0.0.1:${pod}`,
      pod,
      `epoch-of-${instance}`,
      stampsKept,
    ])) as [string, number, string | null, string[]];
  const expiredKeys = [keys.members, keys.beatCounter, keys.beatStamps];
  const expired = async (expiryMs: number, judge: string, ownBeats = stampsKept): Promise<string[]> =>
    (await runScript(redis, 'nbExpiredMembers', expiredKeys, [expiryMs, judge, ownBeats])) as string[];
  /** Moves an instance's last beat `ms` back on the Redis clock (instead of waiting). */
  const age = async (instance: string, ms: number): Promise<void> => {
    const beatMs = Number(await redis.zscore(keys.members, instance));
    await redis.zadd(keys.members, 'XX', beatMs - ms, instance);
  };

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
    expect(await expired(10_000, 'i2')).toEqual([]);
    // i1's last beat 120 ms ago by the Redis clock, and i2 beat 4 times since.
    await age('i1', 120);
    for (let i = 0; i < stampsKept; i++) await beat('i2', 'pod-b');
    expect(await expired(100, 'i2')).toEqual(['i1']);
    const forget = async (instance: string, force = '0'): Promise<number> =>
      (await runScript(
        redis,
        'nbForgetMember',
        [keys.members, keys.memberInfo, keys.pods, keys.beatStamps],
        [instance, 100, force],
      )) as number;
    expect(await forget('i2')).toBe(0);
    expect(await forget('i1')).toBe(1);
    expect(await redis.zrange(keys.members, 0, -1)).toEqual(['i2']);
    expect(await redis.hkeys(keys.memberInfo)).toEqual(['i2']);
    expect(await redis.hgetall(keys.pods)).toEqual({ 'pod-b': 'i2' });
    expect(await redis.hkeys(keys.beatStamps)).toEqual(['i2']);
    expect(await forget('i2', '1')).toBe(1);
    expect(await redis.exists(keys.members, keys.memberInfo, keys.pods, keys.beatStamps)).toBe(0);
  });

  it('calls a late member dead only once Redis has processed enough of the judge’s own beats since', async () => {
    await beat('i1', 'pod-a');
    await beat('i2', 'pod-b');
    // Late by the clock, as after a stall in which Redis processed nobody's beats.
    await age('i1', 5_000);
    await age('i2', 5_000);
    expect(await expired(100, 'i2')).toEqual([]);
    // i2's first beat already followed i1's: two more make three, one short.
    for (let i = 2; i < stampsKept; i++) await beat('i2', 'pod-b');
    expect(await expired(100, 'i2')).toEqual([]);
    await beat('i2', 'pod-b');
    expect(await expired(100, 'i2')).toEqual(['i1']);
    // Only the last beats count: i1 beating once puts it four of i2's beats away again.
    await beat('i1', 'pod-a');
    await age('i1', 5_000);
    expect(await expired(100, 'i2')).toEqual([]);
    // A judge never finds itself dead by its own beats.
    await age('i2', 5_000);
    expect(await expired(100, 'i2')).toEqual([]);
    expect(await redis.hget(keys.beatStamps, 'i2')).toBe('2 3 4 5');
  });

  it('judges a member of an earlier release (no beat stamps) by the clock alone', async () => {
    await beat('i2', 'pod-b');
    await redis.zadd(keys.members, Number(await redis.zscore(keys.members, 'i2')) - 5_000, 'old');
    await redis.hset(keys.memberInfo, 'old', '10.0.0.2:7000|pod-old');
    expect(await expired(100, 'i2')).toEqual(['old']);
  });

  it('starts the judgement over when the beat counter went back', async () => {
    for (let i = 0; i < 3; i++) await beat('i1', 'pod-a');
    await beat('i2', 'pod-b');
    await age('i1', 5_000);
    // The counter is lost (not the stamps): i1's last stamp (3) lies in the counter's future.
    await redis.del(keys.beatCounter);
    await beat('i2', 'pod-b');
    await beat('i2', 'pod-b');
    expect(await redis.hget(keys.beatStamps, 'i2')).toBe('1 2');
    expect(await expired(100, 'i2')).toEqual([]);
    expect(await redis.hget(keys.beatStamps, 'i1')).toBe('2');
    for (let i = 0; i < stampsKept; i++) await beat('i2', 'pod-b');
    expect(await expired(100, 'i2')).toEqual(['i1']);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
