/** Why a queued message was thrown away; a metric label. */
export type DropReason = 'queue_full' | 'session_closed';

export interface SendQueueLimits {
  /** Queued data bytes beyond which the oldest data is dropped. */
  readonly maxDataBytes: number;
  /** Queued data messages beyond which the oldest data is dropped. */
  readonly maxDataMessages: number;
  /** Control bytes beyond which the receiver is hopeless and gets closed. */
  readonly maxControlBytes: number;
  /** Bytes the socket may hold unsent before we stop writing and start queueing. */
  readonly socketHighWaterMark: number;
}

const INITIAL_RING_SLOTS = 8;

export const DEFAULT_SEND_QUEUE_LIMITS: SendQueueLimits = {
  maxDataBytes: 512 * 1024,
  maxDataMessages: 1024,
  maxControlBytes: 1024 * 1024,
  socketHighWaterMark: 128 * 1024,
};

/** The part of a socket the queue needs: how much it still holds unsent. */
export interface WritableGauge {
  readonly writableLength: number;
}

export interface SendQueueHooks {
  /** `inLargerBuffer`: a view pushed as such and written at once (see pushData). */
  write(message: Buffer, inLargerBuffer: boolean): void;
  onDrop(reason: DropReason, message: Buffer): void;
  /** Control data piled up beyond its limit: the receiver does not read. */
  onControlOverflow(): void;
}

/**
 * Outgoing messages of one connection. A sender never waits for a slow
 * receiver: data beyond the limits drops oldest first, control messages are
 * kept and go out before data. Nothing is written until `open()` — this is
 * what makes the auth response the first message a client receives.
 */
export class SendQueue {
  readonly #limits: SendQueueLimits;
  readonly #socket: WritableGauge;
  readonly #hooks: SendQueueHooks;
  readonly #control: Buffer[] = [];
  #controlBytes = 0;
  // Data ring: grows by doubling up to maxDataMessages, so an idle peer costs a few slots, not thousands.
  #ring: (Buffer | undefined)[] = new Array<Buffer | undefined>(INITIAL_RING_SLOTS);
  #head = 0;
  #count = 0;
  #dataBytes = 0;
  #open = false;
  #closed = false;

  constructor(
    socket: WritableGauge,
    hooks: SendQueueHooks,
    limits: SendQueueLimits = DEFAULT_SEND_QUEUE_LIMITS,
  ) {
    this.#socket = socket;
    this.#hooks = hooks;
    this.#limits = limits;
  }

  get queuedDataMessages(): number {
    return this.#count;
  }

  get queuedDataBytes(): number {
    return this.#dataBytes;
  }

  /** Starts writing; `first` (the auth response) goes out before anything queued. */
  open(first?: Buffer): void {
    if (this.#closed || this.#open) return;
    this.#open = true;
    if (first) this.#hooks.write(first, false);
    this.flush();
  }

  /**
   * `pinsLargerBuffer`: the message is a view into a bigger buffer (a mesh
   * frame). Written at once it stays a view (and the hook is told so);
   * queued, it is copied, so a slow receiver holds its own bytes and not
   * whole frames (bounded memory).
   */
  pushData(message: Buffer, { pinsLargerBuffer = false }: { pinsLargerBuffer?: boolean } = {}): void {
    if (this.#closed) {
      this.#hooks.onDrop('session_closed', message);
      return;
    }
    if (this.#canWriteDirectly()) {
      this.#hooks.write(message, pinsLargerBuffer);
      return;
    }
    if (pinsLargerBuffer) {
      // Unpooled and exact: a pool slab would pin 8 KiB per queued message instead.
      const own = Buffer.allocUnsafeSlow(message.length);
      message.copy(own);
      message = own;
    }
    while (
      this.#count > 0 &&
      (this.#count >= this.#limits.maxDataMessages ||
        this.#dataBytes + message.length > this.#limits.maxDataBytes)
    ) {
      this.#hooks.onDrop('queue_full', this.#shiftData());
    }
    if (this.#count === this.#ring.length) this.#grow();
    const tail = (this.#head + this.#count) % this.#ring.length;
    this.#ring[tail] = message;
    this.#count++;
    this.#dataBytes += message.length;
  }

  pushControl(message: Buffer): void {
    if (this.#closed) return;
    if (this.#canWriteDirectly()) {
      this.#hooks.write(message, false);
      return;
    }
    this.#control.push(message);
    this.#controlBytes += message.length;
    if (this.#controlBytes > this.#limits.maxControlBytes) this.#hooks.onControlOverflow();
  }

  /** Writes what the socket can take now; call on the socket's 'drain'. */
  flush(): void {
    if (!this.#open || this.#closed) return;
    const limit = this.#limits.socketHighWaterMark;
    while (this.#socket.writableLength < limit) {
      const control = this.#control.shift();
      if (control) {
        this.#controlBytes -= control.length;
        this.#hooks.write(control, false);
        continue;
      }
      if (this.#count === 0) return;
      this.#hooks.write(this.#shiftData(), false);
    }
  }

  /** Drops everything still queued; later pushes are dropped at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#count > 0) this.#hooks.onDrop('session_closed', this.#shiftData());
    this.#control.length = 0;
    this.#controlBytes = 0;
  }

  #canWriteDirectly(): boolean {
    return (
      this.#open &&
      this.#count === 0 &&
      this.#control.length === 0 &&
      this.#socket.writableLength < this.#limits.socketHighWaterMark
    );
  }

  #grow(): void {
    const grown = new Array<Buffer | undefined>(
      Math.min(this.#ring.length * 2, this.#limits.maxDataMessages),
    );
    for (let i = 0; i < this.#count; i++) grown[i] = this.#ring[(this.#head + i) % this.#ring.length];
    this.#ring = grown;
    this.#head = 0;
  }

  #shiftData(): Buffer {
    const message = this.#ring[this.#head] as Buffer;
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#ring.length;
    this.#count--;
    this.#dataBytes -= message.length;
    return message;
  }
}
