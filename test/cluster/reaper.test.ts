import { describe, expect, it } from 'vitest';
import { metricValue } from './cluster-test-kit.js';
import { useStoreFixture } from './store-fixture.js';

const f = useStoreFixture();

describe('Reaper on the narrow store', () => {
  it('removes a deleted pod’s sessions and membership, counting both', async () => {
    await f.instanceWithSessions('dead', 'relay-1', 3);
    expect(await f.reaper.reap('dead', 'pod_deleted')).toBe(3);
    expect(await f.store.sessionCount('dead')).toBe(0);
    expect(await f.store.instanceOfPod('relay-1')).toBeUndefined();
    expect(await metricValue(f.metrics, 'relay_cluster_reaped_sessions_total')).toBe(3);
    expect(
      await metricValue(f.metrics, 'relay_cluster_reaped_instances_total', { cause: 'pod_deleted' }),
    ).toBe(1);
  });

  it("'expired' on an instance that beat meanwhile removes its sessions but keeps it a member", async () => {
    await f.instanceWithSessions('slow', 'relay-2', 2);
    expect(await f.reaper.reap('slow', 'expired')).toBe(2);
    expect(await f.store.instanceOfPod('relay-2')).toBe('slow');
    expect(await metricValue(f.metrics, 'relay_cluster_reaped_instances_total')).toBe(0);
  });

  it('leaves the work to the pod holding the reap lock', async () => {
    await f.instanceWithSessions('dead', 'relay-3', 1);
    expect(await f.store.lockReap('dead', 'someone-else', 5_000)).toBe(true);
    expect(await f.reaper.reap('dead', 'pod_deleted')).toBeUndefined();
    expect(await f.store.sessionCount('dead')).toBe(1);
  });
});
