import type { Redis } from 'ioredis';
import type { PeerKey } from '../../protocol/peer-id.js';
import { printedPeer, type RedisKeys } from './keys.js';
import { decodeMemberTable, type MemberRecord } from './member-codec.js';
import { decodeStoredRoute, type StoredRoute } from './route-codec.js';
import { runScript, type RedisClient } from './scripts.js';

const ROUTE_SCAN_BATCH = 1_000;
const INDEX_SCAN_BATCH = 500;
/**
 * How many of its own beats a reaper must have had processed since another member's last beat
 * before it may call that member dead (and how many beat stamps each member keeps): 4 beats of
 * 500 ms span the 2 s expiry, so a kill -9 is still noticed about when the clock says so.
 */
export const OWN_BEATS_BEFORE_REAPING = 4;

export interface Registered {
  token: number;
  /** The session this one replaced (already announced offline by the script). */
  previous: StoredRoute | undefined;
}

export type Restored =
  /** Written again (or found intact: token unchanged); `previous` is what it replaced. */
  | { kind: 'restored'; token: number; previous: StoredRoute | undefined }
  /** A newer session exists and was left alone. */
  | { kind: 'superseded'; current: StoredRoute | undefined };

export interface Heartbeat {
  epoch: string;
  /** Whether this instance was in the member table before the beat (false: it was reaped). */
  wasMember: boolean;
  /** An earlier instance that claimed the same pod name, to be reaped. */
  predecessor: string | undefined;
  members: Map<string, MemberRecord>;
}

/**
 * Every operation on the cluster's Redis data, typed: the only code that knows the key layout
 * (keys.ts), the value formats (route-codec.ts, member-codec.ts) and the scripts (lua/).
 */
export class RedisStore {
  readonly keys: RedisKeys;
  readonly #redis: RedisClient;
  readonly #scanTargets: () => Redis[];

  constructor(options: { redis: RedisClient; keys: RedisKeys; scanTargets?: () => Redis[] }) {
    this.keys = options.keys;
    this.#redis = options.redis;
    this.#scanTargets = options.scanTargets ?? (() => [options.redis as Redis]);
  }

  // ---- routes --------------------------------------------------------------

  /** A new session of `peer` on `instance` with a token above every earlier one; publishes the events. */
  async register(
    peer: PeerKey,
    instance: string,
    epoch: string,
    floorTtlSeconds: number,
  ): Promise<Registered> {
    const printed = printedPeer(peer);
    const [token, previous] = (await runScript(this.#redis, 'nbRegister', this.#tokenKeys(printed), [
      instance,
      printed,
      epoch,
      floorTtlSeconds,
      this.keys.events,
    ])) as [string, string | null];
    return { token: Number(token), previous: previous ? decodeStoredRoute(previous) : undefined };
  }

  /** Writes a session of ours back unless a newer session of the peer exists. */
  async restore(
    peer: PeerKey,
    session: { instance: string; token: number; session: number },
    epoch: string,
    floorTtlSeconds: number,
  ): Promise<Restored> {
    const printed = printedPeer(peer);
    const [token, other] = (await runScript(this.#redis, 'nbRestore', this.#tokenKeys(printed), [
      session.instance,
      printed,
      epoch,
      floorTtlSeconds,
      this.keys.events,
      session.token,
      session.session,
    ])) as [string | null, string | null];
    const decoded = other ? decodeStoredRoute(other) : undefined;
    if (token === null) return { kind: 'superseded', current: decoded };
    return { kind: 'restored', token: Number(token), previous: decoded };
  }

  /** Removes the peer's route if it still holds `token`; publishes offline. */
  async deleteRouteIfToken(peer: PeerKey, token: number, epoch: string): Promise<boolean> {
    return this.#compareAndDelete(printedPeer(peer), 'token', String(token), epoch);
  }

  /** Removes the peer's route if `instance` still holds it, whatever the token; publishes offline. */
  async deleteRouteIfInstance(printed: string, instance: string, epoch: string): Promise<boolean> {
    return this.#compareAndDelete(printed, 'instance', instance, epoch);
  }

  async readRoute(peer: PeerKey): Promise<StoredRoute | undefined> {
    const value = await this.#redis.get(this.keys.route(printedPeer(peer)));
    return value === null ? undefined : decodeStoredRoute(value);
  }

  /** Every route of the data set (each master of a Redis Cluster), in batches. */
  async scanRoutes(): Promise<Map<PeerKey, StoredRoute>> {
    const result = new Map<PeerKey, StoredRoute>();
    for (const node of this.#scanTargets()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(
          cursor,
          'MATCH',
          this.keys.routePattern,
          'COUNT',
          ROUTE_SCAN_BATCH,
        );
        cursor = next;
        if (keys.length === 0) continue;
        const pipeline = node.pipeline();
        for (const key of keys) pipeline.get(key);
        const values = (await pipeline.exec()) ?? [];
        keys.forEach((key, index) => {
          const peer = this.keys.peerOfRouteKey(key);
          const value = values[index]?.[1];
          const stored = typeof value === 'string' ? decodeStoredRoute(value) : undefined;
          if (peer !== undefined && stored) result.set(peer, stored);
        });
      } while (cursor !== '0');
    }
    return result;
  }

  // ---- epoch ---------------------------------------------------------------

  /** The data set's identity, set to `candidate` when missing (Redis started empty or lost its data). */
  async ensureEpoch(candidate: string): Promise<string> {
    const [epoch] = (await runScript(this.#redis, 'nbEpoch', [this.keys.epoch], [candidate])) as [
      string,
      number,
    ];
    return epoch;
  }

  async readEpoch(): Promise<string | undefined> {
    return (await this.#redis.get(this.keys.epoch)) ?? undefined;
  }

  // ---- an instance's session index -----------------------------------------

  /** Index first, script after: if we die in between, the reaper still finds the session. */
  async indexSession(instance: string, peer: PeerKey): Promise<void> {
    await this.#redis.sadd(this.keys.instanceSessions(instance), printedPeer(peer));
  }

  async unindexSession(instance: string, peer: PeerKey): Promise<void> {
    await this.#redis.srem(this.keys.instanceSessions(instance), printedPeer(peer));
  }

  async sessionCount(instance: string): Promise<number> {
    return this.#redis.scard(this.keys.instanceSessions(instance));
  }

  // ---- membership ----------------------------------------------------------

  async heartbeat(instance: string, member: MemberRecord, candidateEpoch: string): Promise<Heartbeat> {
    const keys = this.keys;
    const [epoch, wasMember, predecessor, info] = (await runScript(
      this.#redis,
      'nbHeartbeat',
      [keys.epoch, keys.members, keys.memberInfo, keys.pods, keys.beatCounter, keys.beatStamps],
      [instance, member.meshAddress, member.podName, candidateEpoch, OWN_BEATS_BEFORE_REAPING],
    )) as [string, number, string | null, string[]];
    return {
      epoch,
      wasMember: wasMember === 1,
      predecessor: predecessor ?? undefined,
      members: decodeMemberTable(info),
    };
  }

  /**
   * Instances dead in the eyes of `judge`: their last beat is older than `expiryMs` by the Redis
   * clock, and Redis has since processed OWN_BEATS_BEFORE_REAPING beats of the judge (so a Redis
   * that stalled and then answers late makes nobody look dead). Instances of an earlier release,
   * which keep no beat stamps, are judged by the clock alone.
   */
  async expiredMembers(expiryMs: number, judge: string): Promise<string[]> {
    const keys = this.keys;
    return (await runScript(
      this.#redis,
      'nbExpiredMembers',
      [keys.members, keys.beatCounter, keys.beatStamps],
      [expiryMs, judge, OWN_BEATS_BEFORE_REAPING],
    )) as string[];
  }

  /** The instance that last claimed `podName`. */
  async instanceOfPod(podName: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.keys.pods, podName)) ?? undefined;
  }

  // ---- reaping -------------------------------------------------------------

  /** A short lock so one pod at a time reaps `instance`. */
  async lockReap(instance: string, holder: string, ms: number): Promise<boolean> {
    return (await this.#redis.set(this.keys.reapLock(instance), holder, 'PX', ms, 'NX')) === 'OK';
  }

  /** Compare-and-delete (by instance) of every session `instance` indexed; returns how many it removed. */
  async deleteSessionsOf(instance: string): Promise<number> {
    const epoch = (await this.readEpoch()) ?? '';
    const index = this.keys.instanceSessions(instance);
    let removed = 0;
    let cursor = '0';
    do {
      const [next, peers] = await this.#redis.sscan(index, cursor, 'COUNT', INDEX_SCAN_BATCH);
      cursor = next;
      const results = await Promise.all(
        peers.map((printed) => this.deleteRouteIfInstance(printed, instance, epoch)),
      );
      removed += results.filter(Boolean).length;
    } while (cursor !== '0');
    return removed;
  }

  /**
   * Removes `instance` from the member tables and drops its session index, unless it beat within
   * `expiryMs` (it was only slow) and `evenIfAlive` is false. Returns whether it was removed.
   */
  async forgetMember(
    instance: string,
    expiryMs: number,
    { evenIfAlive }: { evenIfAlive: boolean },
  ): Promise<boolean> {
    const keys = this.keys;
    const forgotten = await runScript(
      this.#redis,
      'nbForgetMember',
      [keys.members, keys.memberInfo, keys.pods, keys.beatStamps],
      [instance, expiryMs, evenIfAlive ? '1' : '0'],
    );
    // A slow but living instance beat again: it restores its own index and sessions.
    if (forgotten !== 1) return false;
    await this.#redis.del(keys.instanceSessions(instance));
    return true;
  }

  /** What register.lua and restore.lua read and write: the route and the token floors. */
  #tokenKeys(printed: string): string[] {
    return [this.keys.route(printed), this.keys.tokenFloor(printed), this.keys.legacyTokenFloor(printed)];
  }

  async #compareAndDelete(
    printed: string,
    field: 'token' | 'instance',
    expected: string,
    epoch: string,
  ): Promise<boolean> {
    const removed = await runScript(
      this.#redis,
      'nbCompareAndDelete',
      [this.keys.route(printed)],
      [field, expected, printed, epoch, this.keys.events],
    );
    return removed === 1;
  }
}
