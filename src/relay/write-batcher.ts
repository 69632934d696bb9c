import type { Socket } from 'node:net';

/**
 * Bytes a corked socket may collect before it is written out early: enough for
 * one large writev, well below the send queue's high-water mark (128 KiB), so
 * batching alone never pushes a receiver's messages into its queue.
 */
export const MAX_BATCH_BYTES = 64 * 1024;

/**
 * Coalesces the writes an event-loop turn makes to a socket into a single
 * writev: the socket is corked at its first write and uncorked once every
 * read of this poll phase has been dispatched (setImmediate runs right after
 * it, never on a timer). Uncorking after each read instead cut a receiver's
 * writes into one small writev per incoming chunk: a pod receiving one mesh
 * link's frames for 8 receivers wrote ~6 messages per system call.
 */
export class WriteBatcher {
  readonly #corked: Socket[] = [];
  readonly #afterFlush: ((allWritten: boolean) => void)[] = [];
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    const sockets = this.#corked.splice(0);
    let allWritten = true;
    for (const socket of sockets) {
      // A socket released early (or closed) is no longer corked; uncork() is then a no-op.
      if (socket.writableCorked > 0) socket.uncork();
      // Unsent bytes mean a write the kernel has not taken: its buffers are still in use.
      if (socket.writableLength > 0) allWritten = false;
    }
    if (this.#afterFlush.length > 0) for (const callback of this.#afterFlush.splice(0)) callback(allWritten);
  };

  /** Call before the first write of this turn to `socket`. */
  cork(socket: Socket): void {
    socket.cork();
    this.#corked.push(socket);
    this.#schedule();
  }

  /**
   * Calls back after this turn's writes are uncorked: `allWritten` says whether
   * every socket written this turn took everything, so that no buffer passed to
   * write() in this turn is referenced by a pending write any more.
   */
  whenWritten(callback: (allWritten: boolean) => void): void {
    this.#afterFlush.push(callback);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  /** Call after a write: a socket holding a full batch is written out now (the next write corks again). */
  wrote(socket: Socket): void {
    if (socket.writableCorked > 0 && socket.writableLength >= MAX_BATCH_BYTES) socket.uncork();
  }
}
