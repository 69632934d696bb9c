/**
 * Calls back once the writes the relay made in this event-loop turn have gone
 * to the sockets; `allWritten` is false when a socket still holds unsent bytes.
 */
export type WhenWritten = (callback: (allWritten: boolean) => void) => void;

/**
 * Memory for mesh frames that span socket reads (most 64 KiB frames do), reused
 * instead of a fresh 64 KiB buffer (and the garbage collection it causes) per
 * frame on the receiving pod.
 *
 * A delivered frame's messages live on as views: a session writes a view to
 * its corked socket at once, or copies it when it has to queue. So a frame's
 * memory is free again only when the relay's writes of that turn have all
 * gone out. If any socket still holds unsent bytes, the memory is left to the
 * garbage collector instead, since a pending write may point into it.
 */
export class FrameAssemblyPool {
  /** Frames up to this size use pooled memory; larger ones get a buffer of their own. */
  readonly bufferSize: number;
  readonly #maxIdle: number;
  readonly #whenWritten: WhenWritten;
  readonly #idle: ArrayBuffer[] = [];
  /** Memory this pool made: anything else handed to release() is not ours to reuse. */
  readonly #lent = new WeakSet<ArrayBuffer>();

  constructor(options: { bufferSize: number; maxIdle: number; whenWritten: WhenWritten }) {
    this.bufferSize = options.bufferSize;
    this.#maxIdle = options.maxIdle;
    this.#whenWritten = options.whenWritten;
  }

  /** Memory waiting to be reused. */
  get idle(): number {
    return this.#idle.length;
  }

  /** A buffer for a frame of `length` bytes. */
  take(length: number): Buffer {
    if (length > this.bufferSize) return Buffer.allocUnsafe(length);
    let memory = this.#idle.pop();
    if (memory === undefined) {
      memory = new ArrayBuffer(this.bufferSize);
      this.#lent.add(memory);
    }
    return Buffer.from(memory, 0, length);
  }

  /**
   * `frame` (from take) has been delivered: its memory is reused once this
   * turn's writes are out, if they all went. Anything else is ignored.
   */
  release(frame: Buffer): void {
    const memory = frame.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.#lent.has(memory)) return;
    this.#whenWritten((allWritten) => {
      if (allWritten && this.#idle.length < this.#maxIdle && !this.#idle.includes(memory))
        this.#idle.push(memory);
    });
  }
}
