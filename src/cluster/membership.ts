import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { MemberRecord } from '../registry/redis/member-codec.js';
import type { RedisStore } from '../registry/redis/store.js';
import type { ClusterMetrics } from './cluster-metrics.js';
import { backgroundClock, type Clock, type TimerHandle } from '../time/clock.js';
import type { Reaper } from './reaper.js';

/** A live instance as its heartbeat describes it. */
export interface MemberInfo {
  readonly instance: string;
  /** host:port its mesh listener is reachable at. */
  readonly meshAddress: string;
  readonly podName: string;
}

export interface MembershipTiming {
  /** How often this instance beats. */
  heartbeatIntervalMs: number;
  /** An instance whose last beat is older than this is dead. */
  expiryMs: number;
  /** How often expired instances are looked for. */
  reapCheckIntervalMs: number;
}

/** What membership needs of the Redis data. */
export type MembershipStore = Pick<RedisStore, 'heartbeat' | 'expiredMembers' | 'sessionCount'>;

/** Told what each beat read: the data set's epoch, and whether another pod had reaped us. */
export interface HeartbeatObserver {
  noteHeartbeat(epoch: string, { membershipLost }: { membershipLost: boolean }): void;
}

/**
 * Beats 2 per second with a 2 s expiry and looks for the dead 4 times per
 * second: a kill -9 is noticed in 1.5–2.3 s, inside the 3 s target, while a
 * pod paused for less than ~1.5 s is not mistaken for death (and a longer pause
 * heals: the instance notices it was reaped and restores its sessions). A stall
 * of Redis itself is never taken for death: a member is dead only once Redis
 * has processed several of the judge's own beats since the member's last one.
 */
export const DEFAULT_MEMBERSHIP_TIMING: MembershipTiming = {
  heartbeatIntervalMs: 500,
  expiryMs: 2_000,
  reapCheckIntervalMs: 250,
};

/**
 * This instance's liveness in Redis, the list of the others (with their mesh
 * addresses), and the detection of dead ones.
 */
export class Membership {
  readonly #store: MembershipStore;
  readonly #instanceId: string;
  readonly #meshAddress: string;
  readonly #podName: string;
  readonly #registry: HeartbeatObserver;
  readonly #reaper: Reaper;
  readonly #timing: MembershipTiming;
  readonly #logger: Logger;
  readonly #metrics: ClusterMetrics;
  readonly #onMembers: (members: ReadonlyMap<string, MemberInfo>) => void;
  readonly #onExpired: (instance: string) => void;
  #members: ReadonlyMap<string, MemberInfo> = new Map();
  #lastBeatAt = 0;
  /** Start of the current run of successful beats (undefined after a failed one). */
  #beatingSince: number | undefined;
  #beaten = false;
  #beatRunning = false;
  #reapRunning = false;
  readonly #clock: Clock;
  #timers: TimerHandle[] = [];
  #closed = false;

  constructor(options: {
    store: MembershipStore;
    instanceId: string;
    meshAddress: string;
    podName: string;
    registry: HeartbeatObserver;
    reaper: Reaper;
    logger: Logger;
    metrics: ClusterMetrics;
    onMembers: (members: ReadonlyMap<string, MemberInfo>) => void;
    /** An instance's heartbeat expired: it is dead (its sessions are being reaped). */
    onExpired?: (instance: string) => void;
    timing?: MembershipTiming;
    /** Heartbeats, expiry checks and the heartbeat age run on this clock. */
    clock?: Clock;
  }) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#meshAddress = options.meshAddress;
    this.#podName = options.podName;
    this.#registry = options.registry;
    this.#reaper = options.reaper;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#onMembers = options.onMembers;
    this.#onExpired = options.onExpired ?? (() => {});
    this.#timing = options.timing ?? DEFAULT_MEMBERSHIP_TIMING;
    this.#clock = options.clock ?? backgroundClock;
  }

  /** Beats once (best effort), then keeps beating and reaping in the background. */
  async start(): Promise<void> {
    await this.beat();
    const clock = this.#clock;
    this.#timers.push(clock.setInterval(() => void this.beat(), this.#timing.heartbeatIntervalMs));
    this.#timers.push(clock.setInterval(() => void this.#reapExpired(), this.#timing.reapCheckIntervalMs));
  }

  get members(): ReadonlyMap<string, MemberInfo> {
    return this.#members;
  }

  /** Peers each live instance holds in Redis (its session index), zeros included. */
  async peerCounts(): Promise<Map<string, number>> {
    const instances = [...this.#members.keys()];
    const counts = await Promise.all(instances.map((instance) => this.#store.sessionCount(instance)));
    return new Map(instances.map((instance, i) => [instance, counts[i] ?? 0]));
  }

  /** Live instances that run (or ran) in the pod named `podName`. */
  instancesOfPod(podName: string): string[] {
    const found: string[] = [];
    for (const member of this.#members.values()) if (member.podName === podName) found.push(member.instance);
    return found;
  }

  notReadyReason(): string | undefined {
    if (this.#clock.now() - this.#lastBeatAt > this.#timing.expiryMs) return 'heartbeat not written';
    return undefined;
  }

  async beat(): Promise<void> {
    if (this.#beatRunning || this.#closed) return;
    this.#beatRunning = true;
    try {
      const { epoch, wasMember, predecessor, members } = await this.#store.heartbeat(
        this.#instanceId,
        { meshAddress: this.#meshAddress, podName: this.#podName },
        randomUUID(),
      );
      this.#lastBeatAt = this.#clock.now();
      this.#beatingSince ??= this.#lastBeatAt;
      this.#registry.noteHeartbeat(epoch, { membershipLost: this.#beaten && !wasMember });
      this.#beaten = true;
      this.#setMembers(members);
      if (predecessor) {
        this.#logger.info({ predecessor }, 'reaping the previous process of this pod');
        void this.#reaper.reap(predecessor, 'predecessor').catch((err: unknown) => {
          this.#logger.warn({ err, predecessor }, 'reaping the predecessor failed');
        });
      }
    } catch (err) {
      this.#beatingSince = undefined;
      this.#metrics.heartbeatFailures.inc();
      this.#logger.debug({ err }, 'heartbeat failed');
    } finally {
      this.#beatRunning = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) this.#clock.clearInterval(timer);
    this.#timers = [];
  }

  #setMembers(records: ReadonlyMap<string, MemberRecord>): void {
    const members = new Map<string, MemberInfo>();
    for (const [instance, record] of records) members.set(instance, { instance, ...record });
    this.#members = members;
    this.#metrics.members.set(members.size);
    this.#onMembers(members);
  }

  async #reapExpired(): Promise<void> {
    if (this.#reapRunning || this.#closed) return;
    // After Redis was unreachable nobody could beat: give every live instance a full
    // expiry period of working Redis before believing that a missing beat means death.
    if (this.#beatingSince === undefined || this.#clock.now() - this.#beatingSince < this.#timing.expiryMs)
      return;
    this.#reapRunning = true;
    try {
      const expired = await this.#store.expiredMembers(this.#timing.expiryMs, this.#instanceId);
      const others = expired.filter((instance) => instance !== this.#instanceId);
      if (others.length === 0) return;
      for (const instance of others) this.#onExpired(instance);
      await Promise.all(others.map((instance) => this.#reaper.reap(instance, 'expired')));
      // Let the mesh drop links to the dead at once rather than at the next beat.
      await this.beat();
    } catch (err) {
      this.#logger.debug({ err }, 'looking for dead instances failed');
    } finally {
      this.#reapRunning = false;
    }
  }
}
