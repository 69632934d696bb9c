import { describe, expect, it } from 'vitest';
import { DEFAULT_MEMBERSHIP_TIMING, Membership, type MemberInfo } from '../../src/cluster/membership.js';
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
