import type { Socket } from 'node:net';

/**
 * Coalesces the writes one event-loop turn makes to a socket into a single
 * writev: the socket is corked at its first write and uncorked once the
 * current batch of incoming messages has been dispatched. Without it every
 * relayed packet costs its own system call.
 */
export class WriteBatcher {
  readonly #corked: Socket[] = [];
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    const sockets = this.#corked.splice(0);
    for (const socket of sockets) socket.uncork();
  };

  /** Call before the first write of this turn to `socket`. */
  cork(socket: Socket): void {
    socket.cork();
    this.#corked.push(socket);
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flush);
    }
  }
}
