import { PEER_ID_SIZE } from '../protocol/constants.js';
import { peerKeyToBytes, type PeerKey } from '../protocol/peer-id.js';

/**
 * One destination peer's messages waiting for a mesh link: a ring that grows
 * by doubling, plus the peer ID bytes once (copied into each record, so no
 * string is encoded per message).
 */
class Flow {
  peer!: PeerKey;
  readonly id = Buffer.allocUnsafe(PEER_ID_SIZE);
  ring: (Buffer | undefined)[] = new Array<Buffer | undefined>(8);
  head = 0;
  count = 0;
  bytes = 0;
  /** Bytes this flow may still send in the current round (deficit round robin). */
  deficit = 0;
  /** Whether this round's quantum was granted (a batch cut mid-turn resumes without a new one). */
  inTurn = false;
  next: Flow | undefined;
  prev: Flow | undefined;

  reset(peer: PeerKey): void {
    this.peer = peer;
    peerKeyToBytes(peer).copy(this.id);
    this.deficit = 0;
    this.inTurn = false;
  }

  push(message: Buffer): void {
    if (this.count === this.ring.length) {
      const grown = new Array<Buffer | undefined>(this.ring.length * 2);
      for (let i = 0; i < this.count; i++) grown[i] = this.ring[(this.head + i) % this.ring.length];
      this.ring = grown;
      this.head = 0;
    }
    this.ring[(this.head + this.count) % this.ring.length] = message;
    this.count++;
    this.bytes += message.length;
  }

  peek(): Buffer {
    return this.ring[this.head] as Buffer;
  }

  shift(): Buffer {
    const message = this.ring[this.head] as Buffer;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    this.bytes -= message.length;
    return message;
  }
}

/** Idle flows kept for reuse; beyond this they are left to the GC. */
const FLOW_POOL_SIZE = 256;

/**
 * The messages waiting for one mesh link, queued per destination peer and
 * sent by deficit round robin, so a flow that floods the link gets its share
 * of each frame and no more. The link holds at most `maxMessages` and
 * `maxBytes`; when full, the message dropped is the oldest of the flow that
 * holds more than its share (the incoming one if it does, else the largest):
 * a flood overflows only itself.
 */
export class MeshFairQueue {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #quantum: number;
  readonly #flows = new Map<PeerKey, Flow>();
  readonly #pool: Flow[] = [];
  /** Active flows (with messages) form a ring; #cursor is the next one to serve. */
  #cursor: Flow | undefined;
  #last: Flow | undefined;
  #length = 0;
  #bytes = 0;

  constructor(maxMessages: number, maxBytes: number, quantum: number) {
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
    this.#quantum = quantum;
  }

  get length(): number {
    return this.#length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get flows(): number {
    return this.#flows.size;
  }

  /** Adds a message for `peer`; returns how many queued messages were dropped to make room. */
  push(peer: PeerKey, message: Buffer): number {
    let flow = this.#last;
    if (flow === undefined || flow.peer !== peer) {
      flow = this.#flows.get(peer) ?? this.#open(peer);
      this.#last = flow;
    }
    let dropped = 0;
    while (this.#length >= this.#maxMessages || this.#bytes + message.length > this.#maxBytes) {
      const victim: Flow = this.#overShare(flow, message.length) ? flow : this.#largest();
      if (victim.count === 0) break;
      this.#bytes -= victim.peek().length;
      victim.shift();
      this.#length--;
      dropped++;
      if (victim.count === 0 && victim !== flow) this.#retire(victim);
    }
    flow.push(message);
    this.#length++;
    this.#bytes += message.length;
    return dropped;
  }

  /**
   * Takes messages in round-robin order until about `budget` bytes (record
   * overhead `perRecord` included) are taken; the first is always taken.
   * Fills `ids` and `messages` from index 0 and returns how many.
   */
  take(budget: number, perRecord: number, ids: Buffer[], messages: Buffer[]): number {
    let taken = 0;
    let size = 0;
    while (this.#cursor !== undefined) {
      const flow: Flow = this.#cursor;
      if (!flow.inTurn) {
        flow.deficit += this.#quantum;
        flow.inTurn = true;
      }
      while (flow.count > 0) {
        const record = flow.peek().length + perRecord;
        if (record > flow.deficit) break;
        if (taken > 0 && size + record > budget) return taken;
        const message = flow.shift();
        ids[taken] = flow.id;
        messages[taken] = message;
        taken++;
        size += record;
        flow.deficit -= record;
        this.#length--;
        this.#bytes -= message.length;
      }
      flow.inTurn = false;
      const next = flow.next;
      if (flow.count === 0) this.#retire(flow);
      else this.#cursor = next;
    }
    return taken;
  }

  /** Empties the queue; returns how many messages it held. */
  clear(): number {
    const count = this.#length;
    while (this.#cursor !== undefined) {
      const flow: Flow = this.#cursor;
      while (flow.count > 0) flow.shift();
      this.#retire(flow);
    }
    this.#length = 0;
    this.#bytes = 0;
    return count;
  }

  /** Whether `flow`, given one more message, holds more than an equal share of the link. */
  #overShare(flow: Flow, incoming: number): boolean {
    const active = this.#flows.size;
    return (
      flow.count > 0 &&
      ((flow.count + 1) * active > this.#maxMessages || (flow.bytes + incoming) * active > this.#maxBytes)
    );
  }

  /** Only on overflow by a flow under its share: some other flow is over it. */
  #largest(): Flow {
    let largest = this.#cursor as Flow;
    for (let f = largest.next; f !== undefined && f !== this.#cursor; f = f.next) {
      if (f.bytes > largest.bytes) largest = f;
    }
    return largest;
  }

  #open(peer: PeerKey): Flow {
    const flow = this.#pool.pop() ?? new Flow();
    flow.reset(peer);
    this.#flows.set(peer, flow);
    // Join the ring just before the cursor: served after every flow already waiting.
    const cursor = this.#cursor;
    if (cursor === undefined) {
      flow.next = flow;
      flow.prev = flow;
      this.#cursor = flow;
    } else {
      const before = cursor.prev as Flow;
      flow.prev = before;
      flow.next = cursor;
      before.next = flow;
      cursor.prev = flow;
    }
    return flow;
  }

  #retire(flow: Flow): void {
    this.#flows.delete(flow.peer);
    if (this.#last === flow) this.#last = undefined;
    if (flow.next === flow) {
      this.#cursor = undefined;
    } else {
      (flow.prev as Flow).next = flow.next;
      (flow.next as Flow).prev = flow.prev;
      if (this.#cursor === flow) this.#cursor = flow.next;
    }
    flow.next = undefined;
    flow.prev = undefined;
    flow.deficit = 0;
    flow.inTurn = false;
    if (this.#pool.length < FLOW_POOL_SIZE) this.#pool.push(flow);
  }
}
