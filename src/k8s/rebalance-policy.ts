/**
 * Connection rebalancing policy (pure). After a scale-up the new pods hold no
 * long-lived connections: peers stay where they first landed. The leader looks
 * at peers per instance and asks instances well above the mean to close some
 * of their peers, which reconnect through the Service and spread over all pods.
 */

export interface RebalanceOptions {
  /** An instance is overloaded above mean × (1 + tolerance) peers. */
  tolerance: number;
  /** Excess (peers above the mean) smaller than this is left alone. */
  minExcess: number;
  /** At most this fraction of one instance's peers is shed in one round. */
  maxShedFraction: number;
  /** At most this many peers are shed in one round, cluster-wide (scaled down proportionally). */
  maxShedPerRound: number;
}

export const DEFAULT_REBALANCE_OPTIONS: RebalanceOptions = {
  tolerance: 0.2,
  minExcess: 10,
  maxShedFraction: 0.25,
  maxShedPerRound: 2_000,
};

export interface ShedRequest {
  instance: string;
  /** Peers this instance should close. */
  count: number;
  /** Peers it held when planned. */
  peers: number;
}

export interface RebalancePlan {
  instances: number;
  total: number;
  mean: number;
  /** Busiest instance's peers / mean (1 when balanced or empty). */
  imbalance: number;
  /** Ordered by count, largest first. */
  requests: ShedRequest[];
}

/**
 * Plans one round. Each overloaded instance is asked to shed its excess over
 * the mean, capped by maxShedFraction of its peers and, across the cluster, by
 * maxShedPerRound. Shed peers land on any pod (some return to the same one), so
 * the loop converges over a few rounds rather than in one. Instances with zero
 * peers must be present in the map: they pull the mean down.
 */
export function planRebalance(
  peersByInstance: ReadonlyMap<string, number>,
  options: Partial<RebalanceOptions> = {},
): RebalancePlan {
  const opts = { ...DEFAULT_REBALANCE_OPTIONS, ...options };
  const entries = [...peersByInstance].map(
    ([instance, peers]) => [instance, Math.max(0, Math.floor(peers))] as const,
  );
  const instances = entries.length;
  const total = entries.reduce((sum, [, peers]) => sum + peers, 0);
  const mean = instances > 0 ? total / instances : 0;
  const busiest = entries.reduce((max, [, peers]) => Math.max(max, peers), 0);
  const imbalance = mean > 0 ? busiest / mean : 1;
  const plan: RebalancePlan = { instances, total, mean, imbalance, requests: [] };
  if (instances < 2 || total === 0) return plan;

  const threshold = mean * (1 + opts.tolerance);
  let wanted: ShedRequest[] = [];
  for (const [instance, peers] of entries) {
    if (peers <= threshold) continue;
    const excess = Math.floor(peers - mean);
    if (excess < opts.minExcess) continue;
    const count = Math.min(excess, Math.floor(peers * opts.maxShedFraction));
    if (count > 0) wanted.push({ instance, count, peers });
  }
  const sum = wanted.reduce((s, r) => s + r.count, 0);
  if (sum > opts.maxShedPerRound) {
    const scale = opts.maxShedPerRound / sum;
    wanted = wanted.map((r) => ({ ...r, count: Math.floor(r.count * scale) })).filter((r) => r.count > 0);
  }
  wanted.sort((a, b) => b.count - a.count || (a.instance < b.instance ? -1 : 1));
  plan.requests = wanted;
  return plan;
}
