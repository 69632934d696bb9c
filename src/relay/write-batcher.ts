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
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    const sockets = this.#corked.splice(0);
    // A socket released early (or closed) is no longer corked; uncork() is then a no-op.
    for (const socket of sockets) if (socket.writableCorked > 0) socket.uncork();
  };

  /** Call before the first write of this turn to `socket`. */
  cork(socket: Socket): void {
    socket.cork();
    this.#corked.push(socket);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Call after a write: a socket holding a full batch is written out now (the next write corks again). */
  wrote(socket: Socket): void {
    if (socket.writableCorked > 0 && socket.writableLength >= MAX_BATCH_BYTES) socket.uncork();
  }
}
