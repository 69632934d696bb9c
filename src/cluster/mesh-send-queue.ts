import type { PeerKey } from '../protocol/peer-id.js';

/**
 * Bounded FIFO of messages waiting for a mesh link, as parallel ring arrays
 * (no allocation per message). When full, the oldest message makes room.
 */
export class MeshSendQueue {
  readonly #peers: (PeerKey | undefined)[];
  readonly #messages: (Buffer | undefined)[];
  readonly #capacity: number;
  readonly #maxBytes: number;
  #head = 0;
  #length = 0;
  #bytes = 0;

  constructor(capacity: number, maxBytes: number) {
    this.#capacity = capacity;
    this.#maxBytes = maxBytes;
    this.#peers = new Array<PeerKey | undefined>(capacity);
    this.#messages = new Array<Buffer | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Adds a message; returns how many older messages were dropped to make room. */
  push(peer: PeerKey, message: Buffer): number {
    let dropped = 0;
    while (
      this.#length > 0 &&
      (this.#length === this.#capacity || this.#bytes + message.length > this.#maxBytes)
    ) {
      this.shift();
      dropped++;
    }
    const tail = (this.#head + this.#length) % this.#capacity;
    this.#peers[tail] = peer;
    this.#messages[tail] = message;
    this.#length++;
    this.#bytes += message.length;
    return dropped;
  }

  /** The message at position `index` from the head (0 = oldest). */
  peekMessageAt(index: number): Buffer {
    return this.#messages[(this.#head + index) % this.#capacity] as Buffer;
  }

  peekPeer(): PeerKey {
    return this.#peers[this.#head] as PeerKey;
  }

  peekMessage(): Buffer {
    return this.#messages[this.#head] as Buffer;
  }

  shift(): void {
    if (this.#length === 0) return;
    this.#bytes -= (this.#messages[this.#head] as Buffer).length;
    this.#peers[this.#head] = undefined;
    this.#messages[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#capacity;
    this.#length--;
  }

  /** Empties the queue; returns how many messages it held. */
  clear(): number {
    const count = this.#length;
    while (this.#length > 0) this.shift();
    return count;
  }
}
