import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatPeerKey } from '../../src/protocol/peer-id.js';
import { Resync } from '../../src/registry/redis-resync.js';
import { metricValue, peer } from '../cluster/cluster-test-kit.js';
import { partsOnPrivateRedis, eventsOf, type Parts } from './support/registry-parts.js';

let parts: Parts;
let resync: Resync;

const fixture = partsOnPrivateRedis('A');

afterEach(() => resync.close());

beforeEach(() => {
  parts = fixture.parts;
  // restoreGraceMs 0: no restore window, so absences are final at once (exact, no timer).
  resync = new Resync({
    state: parts.state,
    connected: () => true,
    tokenFloorTtlSeconds: 60,
    restoreGraceMs: 0,
  });
});

async function synced(reason: string): Promise<void> {
  resync.request(reason);
  expect(resync.synced).toBe(false);
  await expect.poll(() => resync.synced).toBe(true);
}

describe('Resync', () => {
  it('first sync: creates the epoch and announces every route Redis holds', async () => {
    const b = peer('on-b');
    const { token } = await parts.store.register(b, 'B', 'E0', 60);
    await synced('redis_reconnect');
    await resync.firstSync;
    expect(parts.state.epoch).toBe(await parts.store.readEpoch());
    expect(eventsOf(parts.events, b)).toEqual([`online:B:${token}`]);
    expect(
      await metricValue(parts.metrics, 'relay_registry_resyncs_total', { reason: 'redis_reconnect' }),
    ).toBe(1);
  });

  it('a route known here but gone from Redis goes offline; a replaced one is replaced', async () => {
    const gone = peer('gone');
    const moved = peer('moved');
    await synced('redis_reconnect');
    const epoch = parts.state.epoch!;
    const g = await parts.store.register(gone, 'B', epoch, 60);
    const m1 = await parts.store.register(moved, 'B', epoch, 60);
    parts.state.applyRoute(gone, { instance: 'B', token: g.token, session: g.token }, epoch);
    parts.state.applyRoute(moved, { instance: 'B', token: m1.token, session: m1.token }, epoch);
    await parts.store.deleteRouteIfToken(gone, g.token, epoch);
    const m2 = await parts.store.register(moved, 'C', epoch, 60);
    await synced('subscription_reconnect');
    expect(eventsOf(parts.events, gone)).toEqual([`online:B:${g.token}`, `offline:B:${g.token}`]);
    expect(eventsOf(parts.events, moved)).toEqual([
      `online:B:${m1.token}`,
      `offline:B:${m1.token}`,
      `online:C:${m2.token}`,
    ]);
  });

  it('after data loss (new epoch) puts our sessions back with their session id; nobody hears offline', async () => {
    const mine = peer('mine');
    await synced('redis_reconnect');
    const { token } = await parts.store.register(mine, 'A', parts.state.epoch!, 60);
    const local = parts.state.sessions.add(mine, token);
    parts.state.applyRoute(mine, { instance: 'A', token, session: token }, parts.state.epoch!);
    const before = parts.state.epoch;
    await fixture.redis.flushall();
    await synced('redis_reconnect');
    expect(parts.state.epoch).not.toBe(before);
    const stored = await parts.store.readRoute(mine);
    expect(stored).toEqual({ token: local.registration.token, instance: 'A', session: token });
    expect(local.registration.token).toBeGreaterThan(token);
    expect(eventsOf(parts.events, mine)).toEqual([`online:A:${token}`]);
    expect(await metricValue(parts.metrics, 'relay_registry_restored_sessions_total')).toBe(1);
    expect(
      await metricValue(parts.metrics, 'relay_registry_resyncs_total', { reason: 'epoch_changed' }),
    ).toBe(1);
    expect(await parts.store.sessionCount('A')).toBe(1);
  });

  it('a session of ours whose restore is still out when Redis lost its route is neither announced offline nor forgotten', async () => {
    const pending = peer('pending');
    await synced('redis_reconnect');
    const epoch = parts.state.epoch!;
    const { token } = await parts.store.register(pending, 'A', epoch, 60);
    const local = parts.state.sessions.add(pending, token);
    parts.state.applyRoute(pending, { instance: 'A', token, session: token }, epoch);
    // A failover lost the registration, and the restore an earlier resync started has not answered.
    await fixture.redis.del(parts.store.keys.route(formatPeerKey(pending)));
    let answer!: () => void;
    const restoreOut = parts.state.sessions.during(pending, () => new Promise<void>((r) => (answer = r)));
    await synced('cluster_node_lost');
    expect(eventsOf(parts.events, pending)).toEqual([`online:A:${token}`]);
    expect(parts.state.sessions.get(pending)).toBe(local);
    // That restore failed after all: the resync it asks for puts the session back.
    answer();
    await restoreOut;
    await synced('restore_failed');
    expect(await parts.store.readRoute(pending)).toEqual({
      token: local.registration.token,
      instance: 'A',
      session: token,
    });
    expect(local.registration.token).toBeGreaterThan(token);
    expect(eventsOf(parts.events, pending)).toEqual([`online:A:${token}`]);
    expect(await metricValue(parts.metrics, 'relay_registry_restored_sessions_total')).toBe(1);
  });

  it('a restore of ours that ran but whose reply was lost: the route is kept and adopted, not removed as an orphan', async () => {
    const mine = peer('reply-lost');
    await synced('redis_reconnect');
    const epoch = parts.state.epoch!;
    const { token } = await parts.store.register(mine, 'A', epoch, 60);
    const local = parts.state.sessions.add(mine, token);
    parts.state.applyRoute(mine, { instance: 'A', token, session: token }, epoch);
    await fixture.redis.del(parts.store.keys.route(formatPeerKey(mine)));
    // The restore script runs, its reply never reaches the session (timeout, connection lost).
    const written = await parts.store.restore(mine, { instance: 'A', token, session: token }, epoch, 60);
    expect(written).toMatchObject({ kind: 'restored' });
    await synced('restore_failed');
    const stored = await parts.store.readRoute(mine);
    expect(stored).toEqual({ token: (written as { token: number }).token, instance: 'A', session: token });
    expect(local.registration.token).toBe(stored!.token);
    expect(parts.state.sessions.get(mine)).toBe(local);
    expect(eventsOf(parts.events, mine)).toEqual([`online:A:${token}`]);
    expect(await metricValue(parts.metrics, 'relay_registry_orphans_removed_total')).toBe(0);
    expect(await metricValue(parts.metrics, 'relay_registry_restored_sessions_total')).toBe(1);
  });

  it('removes registrations of ours that no session holds (orphans), and only those', async () => {
    const orphan = peer('orphan');
    const held = peer('held');
    await synced('redis_reconnect');
    const epoch = parts.state.epoch!;
    const o = await parts.store.register(orphan, 'A', epoch, 60);
    const h = await parts.store.register(held, 'A', epoch, 60);
    parts.state.sessions.add(held, h.token);
    await synced('redis_reconnect');
    expect(await parts.store.readRoute(orphan)).toBeUndefined();
    expect((await parts.store.readRoute(held))?.token).toBe(h.token);
    expect(await metricValue(parts.metrics, 'relay_registry_orphans_removed_total')).toBe(1);
    expect(eventsOf(parts.events, orphan)).toEqual([`online:A:${o.token}`, `offline:A:${o.token}`]);
  });

  it('reaped while alive (heartbeat: no longer a member) restores our sessions; same epoch, no membership loss: nothing', async () => {
    const mine = peer('reaped');
    await synced('redis_reconnect');
    const epoch = parts.state.epoch!;
    const { token } = await parts.store.register(mine, 'A', epoch, 60);
    parts.state.sessions.add(mine, token);
    // Another pod reaped us: our route is gone.
    await parts.store.deleteRouteIfInstance(formatPeerKey(mine), 'A', epoch);

    resync.noteHeartbeat(epoch, { membershipLost: false });
    expect(resync.synced).toBe(true);
    resync.noteHeartbeat(epoch, { membershipLost: true });
    expect(resync.synced).toBe(false);
    await expect.poll(() => resync.synced).toBe(true);
    expect((await parts.store.readRoute(mine))?.session).toBe(token);
    expect(
      await metricValue(parts.metrics, 'relay_registry_resyncs_total', { reason: 'instance_reaped' }),
    ).toBe(1);
  });

  it('waits for the connections: nothing runs while they are down, the request is kept', async () => {
    let up = false;
    const waiting = new Resync({
      state: parts.state,
      connected: () => up,
      tokenFloorTtlSeconds: 60,
      restoreGraceMs: 0,
    });
    waiting.request('redis_reconnect');
    await Promise.resolve();
    expect(parts.state.epoch).toBeUndefined();
    expect(waiting.synced).toBe(false);
    up = true;
    waiting.request('subscription_reconnect');
    await expect.poll(() => waiting.synced).toBe(true);
    expect(await metricValue(parts.metrics, 'relay_registry_resyncs_total')).toBe(2);
    waiting.close();
  });
});
