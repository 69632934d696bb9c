import { PEER_ID_SIZE } from './constants.js';
import { peerKeyAt, type PeerKey } from './peer-id.js';

/**
 * The keys of the peer IDs read last. Consecutive messages mostly name the
 * same few peers (a sender's destination, a mesh frame's round-robin flows),
 * so comparing 36 bytes spares a string (and a hash of it) per message on the
 * hot path. With more than one slot it is a direct-mapped cache indexed by the
 * ID's last byte (a hash byte, so spread evenly).
 */
export class LastPeerKey {
  readonly #mask: number;
  /** Slot i's ID bytes at i * PEER_ID_SIZE; allocated on first use. */
  #bytes: Buffer | undefined;
  readonly #keys: (PeerKey | undefined)[];

  /** `slots`: a power of two; one for a session, more where many peers interleave. */
  constructor(slots = 1) {
    if (slots < 1 || (slots & (slots - 1)) !== 0) throw new RangeError('slots must be a power of two');
    this.#mask = slots - 1;
    this.#keys = new Array<PeerKey | undefined>(slots).fill(undefined);
  }

  /** The key of the peer ID at `offset` of `buf` (which holds at least 36 bytes there). */
  read(buf: Buffer, offset: number): PeerKey {
    const slot = (buf[offset + PEER_ID_SIZE - 1] as number) & this.#mask;
    const start = slot * PEER_ID_SIZE;
    const bytes = (this.#bytes ??= Buffer.alloc((this.#mask + 1) * PEER_ID_SIZE));
    const key = this.#keys[slot];
    if (key !== undefined && sameId(buf, offset, bytes, start)) return key;
    buf.copy(bytes, start, offset, offset + PEER_ID_SIZE);
    const fresh = peerKeyAt(buf, offset);
    this.#keys[slot] = fresh;
    return fresh;
  }
}

/**
 * A plain loop, from the end (IDs share their "sha-" prefix): for 36 bytes it
 * is several times cheaper than Buffer#compare with offsets, a native call
 * that validates its five arguments.
 */
function sameId(a: Buffer, aOffset: number, b: Buffer, bOffset: number): boolean {
  for (let i = PEER_ID_SIZE - 1; i >= 0; i--) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}
