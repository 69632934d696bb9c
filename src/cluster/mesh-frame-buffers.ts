import { WS_MAX_HEADER_SIZE } from '../net/ws-frame.js';
import { writeTransportRecord } from './mesh-frame.js';

/**
 * A link's frame buffers: a pool of reusable ones (no 64 KiB allocation, and
 * GC, per batch) and the open frame that messages are copied into while
 * nothing waits in the fair queue. Records start at WS_MAX_HEADER_SIZE, so the
 * frame header can be written in place in front of them.
 */
export class MeshFrameBuffers {
  readonly capacity: number;
  readonly #pool: Buffer[] = [];
  readonly #poolLimit: number;
  #open: Buffer | undefined;
  #openEnd = WS_MAX_HEADER_SIZE;
  #openMessages = 0;
  #openBytes = 0;

  /** `capacity`: bytes of one pooled buffer; at most `poolLimit + 1` are kept. */
  constructor(capacity: number, poolLimit: number) {
    this.capacity = capacity;
    this.#poolLimit = poolLimit;
  }

  get hasOpen(): boolean {
    return this.#open !== undefined;
  }

  /** Messages copied into the open frame, not yet handed to the socket. */
  get openMessages(): number {
    return this.#openMessages;
  }

  get openBytes(): number {
    return this.#openBytes;
  }

  /** Where the open frame's records end. */
  get openEnd(): number {
    return this.#openEnd;
  }

  /** Whether a record of `recordBytes` fits the open frame (or none is open) within `frameBytes`. */
  fitsOpen(recordBytes: number, frameBytes: number): boolean {
    return this.#open === undefined || this.#openEnd - WS_MAX_HEADER_SIZE + recordBytes <= frameBytes;
  }

  /** Copies a transport record into the open frame; true when it had to open one. */
  append(peerId: Buffer, message: Buffer): boolean {
    let frame = this.#open;
    const opened = frame === undefined;
    if (frame === undefined) {
      frame = this.acquire();
      this.#open = frame;
      this.#openEnd = WS_MAX_HEADER_SIZE;
    }
    this.#openEnd = writeTransportRecord(frame, this.#openEnd, peerId, message);
    this.#openMessages++;
    this.#openBytes += message.length;
    return opened;
  }

  /** Hands over the open frame (read openEnd, openMessages and openBytes first). */
  detachOpen(): Buffer {
    const frame = this.#open as Buffer;
    this.discardOpen();
    return frame;
  }

  discardOpen(): void {
    this.#open = undefined;
    this.#openEnd = WS_MAX_HEADER_SIZE;
    this.#openMessages = 0;
    this.#openBytes = 0;
  }

  acquire(): Buffer {
    return this.#pool.pop() ?? Buffer.allocUnsafeSlow(this.capacity);
  }

  /** A written frame's buffer, for the next ones. */
  release(buffer: Buffer): void {
    if (this.#pool.length <= this.#poolLimit) this.#pool.push(buffer);
  }
}
