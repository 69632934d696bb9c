import { PEER_ID_SIZE } from './constants.js';
import { peerKeyAt, type PeerKey } from './peer-id.js';

/**
 * The key of the last peer ID read. Consecutive messages mostly name the
 * same peer (a sender's destination, a mesh frame's records), so comparing
 * 36 bytes spares a string per message on the hot path.
 */
export class LastPeerKey {
  #bytes: Buffer | undefined;
  #key: PeerKey | undefined;

  /** The key of the peer ID at `offset` of `buf`. */
  read(buf: Buffer, offset: number): PeerKey {
    const bytes = this.#bytes;
    if (bytes && buf.compare(bytes, 0, PEER_ID_SIZE, offset, offset + PEER_ID_SIZE) === 0) {
      return this.#key as PeerKey;
    }
    const id = (this.#bytes ??= Buffer.allocUnsafe(PEER_ID_SIZE));
    buf.copy(id, 0, offset, offset + PEER_ID_SIZE);
    this.#key = peerKeyAt(id, 0);
    return this.#key;
  }
}
