import { peerKeyToBytes, type PeerKey } from '../protocol/peer-id.js';

/**
 * The 36 ID bytes of the peers a link sends to, so a record copies them
 * instead of encoding the key string per message. Bounded: when it holds
 * `capacity` peers it starts over (a link to a busy pod names many peers,
 * but the ones it names now are few and come back at once).
 */
export class PeerIdBytesCache {
  readonly #capacity: number;
  readonly #bytes = new Map<PeerKey, Buffer>();
  #lastKey: PeerKey | undefined;
  #lastBytes: Buffer | undefined;

  constructor(capacity = 4_096) {
    this.#capacity = capacity;
  }

  get(peer: PeerKey): Buffer {
    // Consecutive messages mostly go to the same peer (one sender's burst).
    if (peer === this.#lastKey) return this.#lastBytes as Buffer;
    let bytes = this.#bytes.get(peer);
    if (bytes === undefined) {
      if (this.#bytes.size >= this.#capacity) this.#bytes.clear();
      bytes = peerKeyToBytes(peer);
      this.#bytes.set(peer, bytes);
    }
    this.#lastKey = peer;
    this.#lastBytes = bytes;
    return bytes;
  }
}
