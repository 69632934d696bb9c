import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { peerIdFromIdentifier, peerKeyFromBytes, type PeerKey } from '../../../src/protocol/peer-id.js';
import { HASH_SLOTS } from '../../../src/registry/redis/hash-slot.js';
import { RedisKeys, printedPeer } from '../../../src/registry/redis/keys.js';
import { RedisStore } from '../../../src/registry/redis/store.js';
import { shiftedClockEnv } from '../../support/clock-shift.js';
import { RedisServer, stopAllRedis } from '../../support/redis-server.js';

/**
 * What the token floor is for and what it costs: a token stays above every earlier token of its
 * peer when the Redis clock steps back, and peer-ID churn leaves a bounded number of floor keys.
 */
const keys = new RedisKeys('t');
const WEEK_SECONDS = 7 * 24 * 3600;
const HOUR_SECONDS = 3600;

const clients: Redis[] = [];
function connect(server: RedisServer): { redis: Redis; store: RedisStore } {
  const redis = new Redis(server.url);
  clients.push(redis);
  return { redis, store: new RedisStore({ redis, keys }) };
}

afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});
afterAll(async () => {
  await stopAllRedis();
});

async function countKeys(redis: Redis, pattern: string): Promise<{ count: number; bytes: number }> {
  let cursor = '0';
  let count = 0;
  let bytes = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.memory('USAGE', key);
    for (const [, usage] of (await pipeline.exec()) ?? []) bytes += Number(usage);
    count += found.length;
  } while (cursor !== '0');
  return { count, bytes };
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
}

/** `count` sessions of distinct random peer IDs, each registered and unregistered (a login and a leave). */
async function churn(store: RedisStore, count: number): Promise<void> {
  const batch = 500;
  for (let start = 0; start < count; start += batch) {
    const peers = Array.from({ length: Math.min(batch, count - start) }, () =>
      peerKeyFromBytes(peerIdFromIdentifier(randomBytes(16).toString('hex'))),
    );
    await Promise.all(
      peers.map(async (peer) => {
        const { token } = await store.register(peer, 'A', 'E1', WEEK_SECONDS);
        expect(await store.deleteRouteIfToken(peer, token, 'E1')).toBe(true);
      }),
    );
  }
}

describe('token floor', () => {
  it('peer-ID churn: 30,000 distinct IDs leave at most one floor key per hash slot and nothing per ID', async () => {
    const { redis, store } = connect(await RedisServer.start());
    const before = await usedMemory(redis);
    await churn(store, 20_000);
    const first = await countKeys(redis, 't:slotfloor:*');
    await churn(store, 10_000);
    const second = await countKeys(redis, 't:slotfloor:*');
    console.log(
      `token floors after 20,000 / 30,000 distinct peer IDs: ${first.count} / ${second.count} keys, ` +
        `${first.bytes} / ${second.bytes} B by MEMORY USAGE; used_memory +${(await usedMemory(redis)) - before} B`,
    );
    // Nothing else is left: no route, no per-peer floor.
    expect(await redis.dbsize()).toBe(second.count);
    expect(second.count).toBeLessThanOrEqual(HASH_SLOTS);
    // 10,000 more new IDs add a few thousand keys at most: the count converges on the slot count.
    expect(second.count - first.count).toBeLessThan(10_000 / 3);
    expect(second.bytes).toBeLessThanOrEqual(second.count * 80);
  }, 60_000);

  it('a peer reconnecting after the Redis clock stepped back an hour gets a newer token; a wrongly reaped holder cannot take it back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-token-floor-'));
    try {
      const persisted = ['--dir', dir, '--dbfilename', 'dump.rdb'];
      const original = await RedisServer.start(persisted);
      const before = connect(original);
      const peer: PeerKey = peerKeyFromBytes(peerIdFromIdentifier('clock-step-peer'));
      // The peer's session on instance A; A is reaped while still holding it (it was only slow).
      const first = await before.store.register(peer, 'A', 'E1', WEEK_SECONDS);
      expect(await before.store.deleteRouteIfInstance(printedPeer(peer), 'A', 'E1')).toBe(true);
      await before.redis.save();
      await original.stop();

      // Redis comes back from its snapshot on a host whose clock is an hour behind.
      const behind = await RedisServer.start(persisted, undefined, {}, shiftedClockEnv(-HOUR_SECONDS, dir));
      const after = connect(behind);
      const [seconds] = await after.redis.time();
      expect(Date.now() / 1000 - Number(seconds)).toBeGreaterThan(HOUR_SECONDS - 60);

      const second = await after.store.register(peer, 'B', 'E1', WEEK_SECONDS);
      expect(second.token).toBeGreaterThan(first.token);
      // A finds its session gone and writes it back: the newer session on B must win.
      const ours = { instance: 'A', token: first.token, session: first.token };
      expect(await after.store.restore(peer, ours, 'E1', WEEK_SECONDS)).toEqual({
        kind: 'superseded',
        current: { token: second.token, instance: 'B', session: second.token },
      });
      expect(await after.store.readRoute(peer)).toMatchObject({ instance: 'B' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
