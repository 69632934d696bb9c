import { Registry } from 'prom-client';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { KubernetesMetrics } from '../../src/k8s/k8s-metrics.js';
import { planRebalance } from '../../src/k8s/rebalance-policy.js';
import { Rebalancer } from '../../src/k8s/rebalancer.js';
import { SteppedTimers } from './support/stepped-timers.js';

const peers = (entries: Record<string, number>): Map<string, number> => new Map(Object.entries(entries));
const counts = (plan: ReturnType<typeof planRebalance>): Record<string, number> =>
  Object.fromEntries(plan.requests.map((r) => [r.instance, r.count]));

describe('planRebalance', () => {
  it('after a scale-up from 2 to 4 pods asks the two old pods to shed down to the mean', () => {
    const plan = planRebalance(peers({ a: 1000, b: 1000, c: 0, d: 0 }), { maxShedFraction: 1 });
    expect(plan.mean).toBe(500);
    expect(plan.imbalance).toBe(2);
    expect(counts(plan)).toEqual({ a: 500, b: 500 });
  });

  it('caps one round at maxShedFraction of each pod', () => {
    const plan = planRebalance(peers({ a: 1000, b: 1000, c: 0, d: 0 }), { maxShedFraction: 0.25 });
    expect(counts(plan)).toEqual({ a: 250, b: 250 });
  });

  it('scales every request down proportionally to respect maxShedPerRound', () => {
    const plan = planRebalance(peers({ a: 3000, b: 1000, c: 0, d: 0 }), {
      maxShedFraction: 1,
      maxShedPerRound: 1000,
    });
    // excess a = 2000, b = 0 (at the mean): only a sheds, capped at 1000.
    expect(counts(plan)).toEqual({ a: 1000 });
    const two = planRebalance(peers({ a: 3000, b: 2200, c: 0, d: 0, e: 0 }), {
      maxShedFraction: 1,
      maxShedPerRound: 1000,
    });
    // mean 1040: excess a 1960, b 1160 (sum 3120) scaled by 1000/3120.
    expect(counts(two)).toEqual({ a: 628, b: 371 });
    expect(two.requests.reduce((s, r) => s + r.count, 0)).toBeLessThanOrEqual(1000);
  });

  it('leaves pods within the tolerance alone', () => {
    const plan = planRebalance(peers({ a: 115, b: 100, c: 85 }), { tolerance: 0.2, minExcess: 1 });
    expect(plan.requests).toEqual([]);
    const over = planRebalance(peers({ a: 130, b: 100, c: 70 }), { tolerance: 0.2, minExcess: 1 });
    expect(counts(over)).toEqual({ a: 30 });
  });

  it('ignores an excess below minExcess (small clusters, noise)', () => {
    expect(planRebalance(peers({ a: 9, b: 0 }), { minExcess: 10 }).requests).toEqual([]);
    expect(counts(planRebalance(peers({ a: 40, b: 0 }), { minExcess: 10, maxShedFraction: 1 }))).toEqual({
      a: 20,
    });
  });

  it('does nothing with fewer than two instances or no peers', () => {
    expect(planRebalance(peers({ a: 5000 })).requests).toEqual([]);
    expect(planRebalance(peers({})).requests).toEqual([]);
    expect(planRebalance(peers({ a: 0, b: 0 })).imbalance).toBe(1);
  });

  it('orders requests by size, largest first, and never asks below the mean', () => {
    const input = peers({ a: 900, b: 1500, c: 1200, d: 100, e: 300 });
    const plan = planRebalance(input, { maxShedFraction: 1, minExcess: 1 });
    expect(plan.requests.map((r) => r.instance)).toEqual(['b', 'c']);
    for (const r of plan.requests) expect(r.peers - r.count).toBeGreaterThanOrEqual(Math.floor(plan.mean));
  });

  it('converges when shed peers reconnect uniformly over all pods', () => {
    const load = new Map(Object.entries({ a: 4000, b: 4000, c: 0, d: 0, e: 0, f: 0, g: 0, h: 0 }));
    for (let round = 0; round < 12; round += 1) {
      const plan = planRebalance(load);
      const shed = plan.requests.reduce((s, r) => s + r.count, 0);
      for (const r of plan.requests) load.set(r.instance, (load.get(r.instance) ?? 0) - r.count);
      const names = [...load.keys()];
      names.forEach((name, i) =>
        load.set(
          name,
          (load.get(name) ?? 0) + Math.floor(shed / names.length) + (i < shed % names.length ? 1 : 0),
        ),
      );
    }
    const values = [...load.values()];
    expect(values.reduce((s, v) => s + v, 0)).toBe(8000);
    expect(Math.max(...values)).toBeLessThanOrEqual(1000 * 1.2 + 10);
  });
});

describe('Rebalancer loop', () => {
  const make = (options: {
    leader: () => boolean;
    peers: () => Promise<Map<string, number>>;
    shed: (instance: string, count: number, windowMs: number) => Promise<void>;
    timers: SteppedTimers;
  }) => {
    const registry = new Registry();
    const metrics = new KubernetesMetrics(registry);
    const rebalancer = new Rebalancer({
      isLeader: options.leader,
      getPeersByInstance: options.peers,
      requestShed: options.shed,
      policy: { maxShedFraction: 1, minExcess: 1 },
      timing: { intervalMs: 20, cooldownMs: 60, shedWindowMs: 1234 },
      logger: pino({ level: 'silent' }),
      metrics,
      clock: options.timers,
    });
    return { rebalancer, registry };
  };

  it('sheds the right number of peers through the injected functions, only while leader', async () => {
    let leader = false;
    const load = new Map([
      ['pod-a', 600],
      ['pod-b', 600],
      ['pod-c', 0],
    ]);
    const requests: Array<[string, number, number]> = [];
    const timers = new SteppedTimers();
    const { rebalancer, registry } = make({
      timers,
      leader: () => leader,
      peers: async () => new Map(load),
      shed: async (instance, count, windowMs) => {
        requests.push([instance, count, windowMs]);
        load.set(instance, (load.get(instance) ?? 0) - count);
        load.set('pod-c', (load.get('pod-c') ?? 0) + count);
      },
    });
    rebalancer.start();
    // Not leader: the round does nothing and the next comes at the normal interval.
    expect(await timers.step()).toBe(20);
    expect(await timers.step()).toBe(20);
    expect(requests).toEqual([]);
    leader = true;
    // A round that shed: the next one waits the cooldown.
    expect(await timers.step()).toBe(60);
    expect(requests).toHaveLength(2);
    // Balanced now: back to the interval, nothing more asked.
    expect(await timers.step()).toBe(20);
    expect(requests).toHaveLength(2);
    await rebalancer.close();
    expect(timers.pending).toEqual([]);
    // mean 400: both old pods shed 200, each over the configured window.
    expect(requests).toEqual([
      ['pod-a', 200, 1234],
      ['pod-b', 200, 1234],
    ]);
    expect([...load.values()]).toEqual([400, 400, 400]);
    const text = await registry.metrics();
    expect(text).toMatch(/relay_rebalance_shed_requested_total 400/);
    expect(text).toMatch(/relay_rebalance_rounds_total\{outcome="shed"\} 1/);
  });

  it('retries a round whose requests all failed at the normal interval, then waits the cooldown', async () => {
    const calls: string[] = [];
    const timers = new SteppedTimers();
    const registry = new Registry();
    const rebalancer = new Rebalancer({
      isLeader: () => true,
      getPeersByInstance: async () =>
        new Map([
          ['x', 100],
          ['y', 0],
        ]),
      requestShed: async () => {
        // The first two fail (say the mesh link to x is not up yet), the third goes out.
        calls.push(calls.length < 2 ? 'failed' : 'sent');
        if (calls.length <= 2) throw new Error('no mesh link up');
      },
      policy: { maxShedFraction: 1, minExcess: 1 },
      timing: { intervalMs: 20, cooldownMs: 60_000, shedWindowMs: 1234 },
      logger: pino({ level: 'silent' }),
      metrics: new KubernetesMetrics(registry),
      clock: timers,
    });
    rebalancer.start();
    // Failed rounds are retried at the interval; the round that sent waits the cooldown.
    expect(await timers.step()).toBe(20);
    expect(await timers.step()).toBe(20);
    expect(await timers.step()).toBe(60_000);
    await rebalancer.close();
    expect(calls).toEqual(['failed', 'failed', 'sent']);
    const text = await registry.metrics();
    expect(text).toMatch(/relay_rebalance_rounds_total\{outcome="error"\} 2/);
    expect(text).toMatch(/relay_rebalance_rounds_total\{outcome="shed"\} 1/);
    expect(text).toMatch(/relay_rebalance_shed_requested_total 50/);
  });
});
