import type { Logger } from 'pino';
import type { KubernetesMetrics } from './k8s-metrics.js';
import { systemClock, type Clock, type TimerHandle } from '../time/clock.js';
import { planRebalance, type RebalanceOptions, type RebalancePlan } from './rebalance-policy.js';

export interface RebalancerTiming {
  /** How often the leader looks at the spread of peers. */
  intervalMs: number;
  /** After a round that shed peers, wait this long (shed window + reconnects settling) before the next. */
  cooldownMs: number;
  /** Each overloaded pod spreads its closes over this window. */
  shedWindowMs: number;
}

export const DEFAULT_REBALANCER_TIMING: RebalancerTiming = {
  intervalMs: 30_000,
  cooldownMs: 120_000,
  shedWindowMs: 60_000,
};

export interface RebalancerOptions {
  isLeader: () => boolean;
  /** Peers per live instance, zeros included. */
  getPeersByInstance: () => Promise<Map<string, number>>;
  /** Asks an instance to close `count` peers spread over `windowMs`. */
  requestShed: (instance: string, count: number, windowMs: number) => Promise<void>;
  policy?: Partial<RebalanceOptions>;
  timing?: Partial<RebalancerTiming>;
  logger: Logger;
  metrics: KubernetesMetrics;
  /** The loop's timers (tests step rounds one by one instead of waiting). */
  clock?: Clock;
}

/**
 * The leader's rebalancing loop: every interval it plans a round with
 * planRebalance and sends the shed requests. The rate is bounded by the
 * policy's per-round caps and by the cooldown after every round that shed
 * (a round whose requests all failed is retried at the normal interval).
 */
export class Rebalancer {
  private readonly options: RebalancerOptions;
  private readonly timing: RebalancerTiming;
  private readonly log: Logger;
  private readonly clock: Clock;
  private timer: TimerHandle | undefined;
  private round: Promise<unknown> | undefined;
  private closed = false;
  /** Whether a request of the last round went out: only then is the cooldown due. */
  private shedInLastRound = false;

  constructor(options: RebalancerOptions) {
    this.options = options;
    this.timing = { ...DEFAULT_REBALANCER_TIMING, ...options.timing };
    this.log = options.logger.child({ component: 'rebalancer' });
    this.clock = options.clock ?? systemClock;
  }

  start(): void {
    if (this.timer === undefined && !this.closed) this.schedule(this.timing.intervalMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.round;
  }

  /** One round (only when leader); returns the plan, or undefined when not leader or on error. */
  async runOnce(): Promise<RebalancePlan | undefined> {
    if (!this.options.isLeader()) return undefined;
    const { metrics } = this.options;
    let plan: RebalancePlan;
    try {
      const peers = await this.options.getPeersByInstance();
      plan = planRebalance(peers, this.options.policy);
    } catch (err) {
      metrics.rebalanceRounds.labels('error').inc();
      this.log.warn({ err }, 'could not read peers per instance');
      return undefined;
    }
    metrics.rebalanceImbalance.set(plan.imbalance);
    if (plan.requests.length === 0) {
      metrics.rebalanceRounds.labels('balanced').inc();
      return plan;
    }
    this.log.info(
      {
        instances: plan.instances,
        peers: plan.total,
        mean: Math.round(plan.mean),
        imbalance: Number(plan.imbalance.toFixed(2)),
        shed: plan.requests.map((r) => ({ instance: r.instance, peers: r.peers, count: r.count })),
        window_ms: this.timing.shedWindowMs,
      },
      'rebalancing: asking overloaded instances to shed peers',
    );
    let failed = false;
    this.shedInLastRound = false;
    for (const request of plan.requests) {
      if (this.closed || !this.options.isLeader()) break;
      try {
        await this.options.requestShed(request.instance, request.count, this.timing.shedWindowMs);
        metrics.rebalanceShedPeers.inc(request.count);
        this.shedInLastRound = true;
      } catch (err) {
        failed = true;
        this.log.warn(
          {
            err,
            instance: request.instance,
            count: request.count,
          },
          'shed request failed',
        );
      }
    }
    metrics.rebalanceRounds.labels(failed ? 'error' : 'shed').inc();
    return plan;
  }

  private schedule(delayMs: number): void {
    this.timer = this.clock.setTimeout(() => {
      const round = this.runOnce();
      this.round = round;
      void round.then((plan) => {
        this.round = undefined;
        if (this.closed) return;
        // A round whose every request failed shed nothing: try again at the normal pace.
        const shed = plan !== undefined && plan.requests.length > 0 && this.shedInLastRound;
        this.schedule(shed ? this.timing.cooldownMs : this.timing.intervalMs);
      });
    }, delayMs);
  }
}
