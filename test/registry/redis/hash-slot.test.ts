import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../../src/protocol/peer-id.js';
import { HASH_SLOTS, hashSlot, slotTag } from '../../../src/registry/redis/hash-slot.js';
import { RedisKeys, printedPeer } from '../../../src/registry/redis/keys.js';
import { freePort, RedisServer, stopAllRedis } from '../../support/redis-server.js';

const keys = new RedisKeys('nbr');
let dir: string;
let redis: Redis;

// A cluster-enabled node answers CLUSTER KEYSLOT without being part of a cluster.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nb-hash-slot-'));
  const busPort = await freePort();
  const node = await RedisServer.start([
    ...['--cluster-enabled', 'yes', '--cluster-port', String(busPort)],
    ...['--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir],
  ]);
  redis = new Redis(node.url);
});

afterAll(async () => {
  redis?.disconnect();
  await stopAllRedis();
  rmSync(dir, { recursive: true, force: true });
});

async function redisSlots(names: string[]): Promise<number[]> {
  const pipeline = redis.pipeline();
  for (const name of names) pipeline.cluster('KEYSLOT', name);
  return ((await pipeline.exec()) ?? []).map(([, slot]) => Number(slot));
}

describe('hash slots', () => {
  it("computes Redis's slot for plain keys, hash tags and empty tags", async () => {
    const names = ['foo', '123456789', '{user1000}.following', 'a{}b', 'x{y', 'ü{tag}', '{}{z}'];
    expect(names.map(hashSlot)).toEqual(await redisSlots(names));
  });

  it("puts each peer's token floor in the slot of its route, with at most one floor per slot", async () => {
    const peers = Array.from({ length: 2_000 }, (_, i) =>
      printedPeer(peerKeyFromBytes(peerIdFromIdentifier(`p${i}`))),
    );
    const routes = await redisSlots(peers.map((p) => keys.route(p)));
    expect(await redisSlots(peers.map((p) => keys.tokenFloor(p)))).toEqual(routes);
    expect(peers.map((p) => hashSlot(keys.route(p)))).toEqual(routes);
    const floors = new Set(peers.map((p) => keys.tokenFloor(p)));
    expect(floors.size).toBe(new Set(routes).size);
  });

  it('has a tag for every slot, each hashing to its slot', () => {
    const tags = new Set<string>();
    for (let slot = 0; slot < HASH_SLOTS; slot++) {
      expect(hashSlot(slotTag(slot))).toBe(slot);
      tags.add(slotTag(slot));
    }
    expect(tags.size).toBe(HASH_SLOTS);
  });
});
