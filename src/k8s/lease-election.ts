import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { httpStatusOf } from '../net/status-code.js';
import { systemClock, type Clock, type TimerHandle } from '../time/clock.js';
import { beforeDeadline } from '../time/deadline.js';
import type { KubernetesMetrics } from './k8s-metrics.js';

export interface LeaseTiming {
  /** How long a non-leader waits, from the last change it observed, before taking the lease over. */
  leaseDurationMs: number;
  /** How long the leader keeps retrying a failed renewal before it gives leadership up. */
  renewDeadlineMs: number;
  /** Interval between attempts (acquire and renew); jittered by up to 1.2x while acquiring. */
  retryPeriodMs: number;
}

/** client-go's defaults. */
export const DEFAULT_LEASE_TIMING: LeaseTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

const JITTER_FACTOR = 1.2;

export interface LeaseElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  leaseName: string;
  /** Unique per process: pod name plus a random suffix, so a restarted container is a new contender. */
  identity: string;
  logger: Logger;
  metrics: KubernetesMetrics;
  timing?: Partial<LeaseTiming>;
  /** Rounds, the renew deadline and the lease's observed age run on this clock. */
  clock?: Clock;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
}

interface ObservedRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

function timeText(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'string' ? value : '';
}

function recordOf(lease: V1Lease): ObservedRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: timeText(spec.acquireTime),
    renewTime: timeText(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

function sameRecord(a: ObservedRecord | undefined, b: ObservedRecord): boolean {
  return (
    a !== undefined &&
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics:
 * - a contender takes the lease only when it is free (no holder, e.g. released)
 *   or when its record has not changed for leaseDurationSeconds as measured on
 *   the contender's own monotonic clock (no clock-skew assumptions);
 * - every write is an update against the resourceVersion read, so two
 *   contenders can never both succeed (409 Conflict loses the round);
 * - acquireTime/renewTime are MicroTime (six fractional digits), leaseTransitions
 *   counts holder changes;
 * - the leader renews every retryPeriod and steps down if it could not renew
 *   for renewDeadline;
 * - close() releases the lease (empty holder, 1 s duration) so a successor takes over at once.
 */
export class LeaseElection {
  private readonly options: LeaseElectionOptions;
  private readonly timing: LeaseTiming;
  private readonly api: CoordinationV1Api;
  private readonly log: Logger;
  private readonly clock: Clock;
  private observed: ObservedRecord | undefined;
  private observedAt = 0;
  private observedLease: V1Lease | undefined;
  private leading = false;
  private lastRenewAt = 0;
  private lastLeader = '';
  private closed = false;
  private timer: TimerHandle | undefined;
  private deadlineTimer: TimerHandle | undefined;
  private running: Promise<void> | undefined;

  constructor(options: LeaseElectionOptions) {
    this.options = options;
    this.timing = { ...DEFAULT_LEASE_TIMING, ...options.timing };
    this.clock = options.clock ?? systemClock;
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.timing;
    if (!(leaseDurationMs > renewDeadlineMs))
      throw new Error('lease duration must exceed the renew deadline');
    if (!(renewDeadlineMs > JITTER_FACTOR * retryPeriodMs)) {
      throw new Error('renew deadline must exceed 1.2 x the retry period');
    }
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.log = options.logger.child({
      component: 'k8s-lease',
      lease: options.leaseName,
      identity: options.identity,
    });
    options.metrics.leader.set(0);
  }

  get identity(): string {
    return this.options.identity;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen on the lease ('' when free or unknown). */
  leader(): string {
    return this.lastLeader;
  }

  start(): void {
    if (this.running || this.closed) return;
    this.schedule(0);
  }

  /**
   * Stops contending. With release (the default) a leader hands the lease back
   * so another pod takes over at once; without, others wait for it to expire.
   */
  async close(options: { release?: boolean } = {}): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    await this.running;
    // Release whenever our last successful write made us the holder, even if close raced the acquisition.
    if (options.release !== false && this.observed?.holderIdentity === this.options.identity)
      await this.release();
    this.setLeading(false);
  }

  private schedule(delayMs: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (this.closed) return;
        const period = this.timing.retryPeriodMs;
        this.schedule(this.leading ? period : period * (1 + Math.random() * JITTER_FACTOR));
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    // A hanging request (client 1.x has no timeout) must not stall the loop.
    const attempt = this.tryAcquireOrRenew().catch((err: unknown) => {
      this.log.warn({ err }, 'lease request failed');
      return false;
    });
    const ok = await beforeDeadline(attempt, this.timing.renewDeadlineMs, () => false, this.clock);
    if (this.closed) return;
    if (ok) {
      this.lastRenewAt = this.clock.monotonicMs();
      if (!this.leading) {
        this.log.info('acquired leadership');
        this.setLeading(true);
      }
    }
    this.checkRenewDeadline();
  }

  /** Runs after every round and on its own timer while leading, so a hung request cannot delay stepping down. */
  private checkRenewDeadline(): void {
    if (!this.leading || this.clock.monotonicMs() - this.lastRenewAt <= this.timing.renewDeadlineMs) return;
    this.log.warn(
      { renew_deadline_ms: this.timing.renewDeadlineMs },
      'could not renew the lease in time; stepping down',
    );
    this.setLeading(false);
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.clock.clearInterval(this.deadlineTimer);
    this.deadlineTimer = undefined;
    if (leading) {
      this.deadlineTimer = this.clock.setInterval(
        () => this.checkRenewDeadline(),
        Math.min(500, this.timing.retryPeriodMs / 4),
      );
    }
    this.options.metrics.leader.set(leading ? 1 : 0);
    this.options.metrics.leadershipChanges.labels(leading ? 'acquired' : 'lost').inc();
    try {
      if (leading) this.options.onStartedLeading?.();
      else this.options.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, 'leadership callback failed');
    }
  }

  private noteLeader(holder: string): void {
    if (holder === this.lastLeader) return;
    this.lastLeader = holder;
    if (holder) this.log.info({ leader: holder }, 'new leader observed');
    try {
      if (holder) this.options.onNewLeader?.(holder);
    } catch (err) {
      this.log.error({ err }, 'onNewLeader failed');
    }
  }

  /** One client-go tryAcquireOrRenew round: true when this process holds the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, leaseName: name, identity } = this.options;
    const durationSeconds = Math.ceil(this.timing.leaseDurationMs / 1000);
    const nowTime = new V1MicroTime(this.clock.now());
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (httpStatusOf(err) !== 404) {
        this.options.metrics.leaseErrors.labels('get').inc();
        throw err;
      }
      try {
        const created = await this.api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: nowTime,
              renewTime: nowTime,
              leaseTransitions: 0,
            },
          },
        });
        this.remember(created);
        return true;
      } catch (createErr) {
        this.options.metrics.leaseErrors.labels('create').inc();
        if (httpStatusOf(createErr) === 409) return false; // someone else created it first
        throw createErr;
      }
    }

    const old = recordOf(lease);
    const now = this.clock.monotonicMs();
    if (!sameRecord(this.observed, old)) {
      this.observed = old;
      this.observedAt = now;
      this.observedLease = lease;
    }
    this.noteLeader(old.holderIdentity);
    const heldByOther = old.holderIdentity !== '' && old.holderIdentity !== identity;
    if (heldByOther && this.observedAt + old.leaseDurationSeconds * 1000 > now) return false;

    const mine = old.holderIdentity === identity;
    const updated: V1Lease = {
      ...lease,
      metadata: { ...lease.metadata, name, namespace, resourceVersion: lease.metadata?.resourceVersion },
      spec: {
        ...lease.spec,
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: mine && old.acquireTime ? new V1MicroTime(old.acquireTime) : nowTime,
        renewTime: nowTime,
        leaseTransitions: mine ? old.leaseTransitions : old.leaseTransitions + 1,
      },
    };
    try {
      this.remember(await this.api.replaceNamespacedLease({ name, namespace, body: updated }));
      if (!mine) this.log.info({ previous: old.holderIdentity || '(released)' }, 'took the lease over');
      return true;
    } catch (err) {
      this.options.metrics.leaseErrors.labels('update').inc();
      if (httpStatusOf(err) === 409) return false; // lost the race: another contender wrote first
      throw err;
    }
  }

  private remember(lease: V1Lease): void {
    this.observed = recordOf(lease);
    this.observedAt = this.clock.monotonicMs();
    this.observedLease = lease;
    this.noteLeader(this.observed.holderIdentity);
  }

  private async release(): Promise<void> {
    const lease = this.observedLease;
    if (!lease || this.observed?.holderIdentity !== this.options.identity) return;
    const now = new V1MicroTime(this.clock.now());
    try {
      await this.api.replaceNamespacedLease({
        name: this.options.leaseName,
        namespace: this.options.namespace,
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: this.observed.leaseTransitions,
          },
        },
      });
      this.log.info('released the lease');
    } catch (err) {
      this.options.metrics.leaseErrors.labels('release').inc();
      this.log.warn({ err }, 'could not release the lease');
    }
  }
}
