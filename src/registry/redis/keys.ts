import { formatPeerKey, parsePrintedPeerId, type PeerKey } from '../../protocol/peer-id.js';
import { hashSlot, slotTag } from './hash-slot.js';

/**
 * Names of everything the cluster keeps in Redis. Peer keys carry a hash tag on
 * the printed peer ID so one peer's keys share a slot (Redis Cluster runs the
 * scripts); cluster-wide tables share the `{cluster}` tag for the same reason.
 *
 *   <p>:peer:{<peer>}      "token|instance|session" of the peer's newest session (no TTL: removed
 *                          by unregister or by the reaper when its instance dies)
 *   <p>:slotfloor:{<tag>}  last token handed out for any peer of one hash slot (TTL, refreshed on
 *                          use); <tag> hashes to that slot, so there are at most 16,384 of them
 *   <p>:floor:{<peer>}     the per-peer floor of earlier releases: kept current while it lives,
 *                          never created (it expires within 7 days of the upgrade)
 *   <p>:inst:{<instance>}  set of peers an instance registered (what the reaper walks)
 *   <p>:reap:{<instance>}  short lock: one pod reaps a dead instance at a time
 *   <p>:{cluster}:epoch    identity of the data set
 *   <p>:{cluster}:members  zset instance -> last heartbeat (Redis clock, ms)
 *   <p>:{cluster}:info     hash instance -> "mesh address|pod name"
 *   <p>:{cluster}:pods     hash pod name -> instance
 *   <p>:{cluster}:beat     counter of every instance's beats, one INCR per beat
 *   <p>:{cluster}:stamps   hash instance -> the counter's values at its last beats, oldest first,
 *                          space-separated (lets a reaper tell a stalled Redis from dead members)
 *   <p>:events             pub/sub channel of peer events
 */
export class RedisKeys {
  readonly prefix: string;
  readonly events: string;
  readonly epoch: string;
  readonly members: string;
  readonly memberInfo: string;
  readonly pods: string;
  readonly beatCounter: string;
  readonly beatStamps: string;
  readonly routePattern: string;
  readonly #routeHead: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.events = `${prefix}:events`;
    this.epoch = `${prefix}:{cluster}:epoch`;
    this.members = `${prefix}:{cluster}:members`;
    this.memberInfo = `${prefix}:{cluster}:info`;
    this.pods = `${prefix}:{cluster}:pods`;
    this.beatCounter = `${prefix}:{cluster}:beat`;
    this.beatStamps = `${prefix}:{cluster}:stamps`;
    this.#routeHead = `${prefix}:peer:{`;
    this.routePattern = `${prefix}:peer:*`;
  }

  route(printedPeer: string): string {
    return `${this.#routeHead}${printedPeer}}`;
  }

  /** The token floor shared by every peer in the hash slot of `printedPeer`. */
  tokenFloor(printedPeer: string): string {
    return `${this.prefix}:slotfloor:{${slotTag(hashSlot(printedPeer))}}`;
  }

  /** The per-peer floor earlier releases wrote; read and kept current during a rolling update. */
  legacyTokenFloor(printedPeer: string): string {
    return `${this.prefix}:floor:{${printedPeer}}`;
  }

  instanceSessions(instance: string): string {
    return `${this.prefix}:inst:{${instance}}`;
  }

  reapLock(instance: string): string {
    return `${this.prefix}:reap:{${instance}}`;
  }

  /** The peer a route key names; undefined for a key that is not one. */
  peerOfRouteKey(key: string): PeerKey | undefined {
    if (!key.startsWith(this.#routeHead) || !key.endsWith('}')) return undefined;
    return parsePrintedPeerId(key.slice(this.#routeHead.length, -1));
  }
}

export function printedPeer(peer: PeerKey): string {
  return formatPeerKey(peer);
}
