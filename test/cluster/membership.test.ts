import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { DEFAULT_MEMBERSHIP_TIMING, Membership, type MemberInfo } from '../../src/cluster/membership.js';
import { Reaper } from '../../src/cluster/reaper.js';
import { OWN_BEATS_BEFORE_REAPING, RedisStore } from '../../src/registry/redis/store.js';
import { failFastClient } from '../registry/support/registry-parts.js';
import { metricValue, silentLogger } from './cluster-test-kit.js';
import { useStoreFixture } from './store-fixture.js';

const f = useStoreFixture();

describe('Membership on the narrow store', () => {
  it('beats, lists the members with their pods, counts their peers, and reaps its pod’s predecessor', async () => {
    await f.instanceWithSessions('old-process', 'relay-0', 2);
    const seen: ReadonlyMap<string, MemberInfo>[] = [];
    const heartbeats: [string, boolean][] = [];
    const membership = new Membership({
      store: f.store,
      instanceId: 'me',
      meshAddress: '[fd00::5]:7946',
      podName: 'relay-0',
      registry: { noteHeartbeat: (epoch, { membershipLost }) => heartbeats.push([epoch, membershipLost]) },
      reaper: f.reaper,
      logger: silentLogger,
      metrics: f.clusterMetrics,
      onMembers: (members) => seen.push(members),
      timing: DEFAULT_MEMBERSHIP_TIMING,
    });
    await membership.beat();
    expect(heartbeats).toEqual([['E1', false]]);
    expect(membership.members.get('me')).toEqual({
      instance: 'me',
      meshAddress: '[fd00::5]:7946',
      podName: 'relay-0',
    });
    expect(membership.notReadyReason()).toBeUndefined();
    // The earlier process of this pod name is reaped in the background.
    await expect.poll(() => f.store.sessionCount('old-process')).toBe(0);
    expect(
      await metricValue(f.metrics, 'relay_cluster_reaped_instances_total', { cause: 'predecessor' }),
    ).toBe(1);

    await membership.beat();
    expect([...membership.members.keys()]).toEqual(['me']);
    expect(await membership.peerCounts()).toEqual(new Map([['me', 0]]));
    expect(membership.instancesOfPod('relay-0')).toEqual(['me']);
    // Reaped by another pod while alive: the next beat reports the membership as lost.
    await f.store.forgetMember('me', 0, { evenIfAlive: true });
    await membership.beat();
    expect(heartbeats.at(-1)).toEqual(['E1', true]);
    expect(seen).toHaveLength(3);
    await membership.close();
  });
});

describe('Membership when Redis stalls', () => {
  // Fast timing so a stall of about a second is three expiry periods long.
  const timing = { heartbeatIntervalMs: 100, expiryMs: 400, reapCheckIntervalMs: 50 };

  /** A member with a connection of its own (as each pod has), recording what it saw. */
  async function member(instance: string) {
    const redis = await failFastClient(f.server.url);
    const store = new RedisStore({ redis, keys: f.store.keys });
    const clusterMetrics = new ClusterMetrics(new Registry());
    const record = { instance, beats: 0, lost: 0, expired: [] as string[] };
    const membership = new Membership({
      store,
      instanceId: instance,
      meshAddress: `10.0.0.1:${instance}`,
      podName: `pod-${instance}`,
      registry: {
        noteHeartbeat: (_epoch, { membershipLost }) => {
          record.beats++;
          if (membershipLost) record.lost++;
        },
      },
      reaper: new Reaper({
        store,
        instanceId: instance,
        expiryMs: timing.expiryMs,
        logger: silentLogger,
        metrics: clusterMetrics,
      }),
      logger: silentLogger,
      metrics: clusterMetrics,
      onMembers: () => {},
      onExpired: (dead) => record.expired.push(dead),
      timing,
    });
    await membership.start();
    const close = async (): Promise<void> => {
      await membership.close();
      redis.disconnect();
    };
    return { record, membership, close };
  }

  /** Waits until every member has beaten `more` times after now. */
  async function beatsOf(members: { record: { beats: number } }[], more: number): Promise<void> {
    const targets = members.map((m) => m.record.beats + more);
    await expect
      .poll(() => members.every((m, i) => m.record.beats >= (targets[i] ?? 0)), { timeout: 10_000 })
      .toBe(true);
  }

  it('reaps nobody when Redis stalls for three expiry periods and then answers everything at once', async () => {
    const members = await Promise.all(['a', 'b', 'c'].map((name) => member(name)));
    try {
      // Each has beaten for longer than the expiry, so each is looking for the dead.
      await beatsOf(members, Math.ceil(timing.expiryMs / timing.heartbeatIntervalMs) + 2);
      f.server.pause();
      // The stall itself (SIGSTOP), not a wait for something: 1.2 s is three expiry periods.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      f.server.resume();
      // Long enough after the stall for every member's reap check to have judged many times.
      await beatsOf(members, OWN_BEATS_BEFORE_REAPING + 4);
      expect(members.flatMap((m) => m.record.expired)).toEqual([]);
      expect(members.map((m) => m.record.lost)).toEqual([0, 0, 0]);
      expect([...(members[0]?.membership.members.keys() ?? [])].sort()).toEqual(['a', 'b', 'c']);
    } finally {
      await Promise.all(members.map((m) => m.close()));
    }
  });

  it('still finds a member that stopped beating dead, once the others have beaten on', async () => {
    const members = await Promise.all(['a', 'b', 'c'].map((name) => member(name)));
    const [a, b, c] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]];
    try {
      await beatsOf(members, Math.ceil(timing.expiryMs / timing.heartbeatIntervalMs) + 2);
      await c.close();
      await expect.poll(() => [...a.record.expired, ...b.record.expired], { timeout: 5_000 }).toContain('c');
      expect([...a.record.expired, ...b.record.expired].filter((dead) => dead !== 'c')).toEqual([]);
      // The expiry is reported before the reap ends by removing c from the member table, and a beat
      // begun before that removal may still list c: wait for the removal, then for beats begun after it.
      const inspect = await failFastClient(f.server.url);
      try {
        await expect.poll(() => inspect.zscore(f.store.keys.members, 'c'), { timeout: 5_000 }).toBeNull();
      } finally {
        inspect.disconnect();
      }
      await beatsOf([a, b], 2);
      expect([...a.membership.members.keys()].sort()).toEqual(['a', 'b']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
