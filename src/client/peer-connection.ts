import { EventEmitter } from 'node:events';
import { formatPeerKey, peerKeyToBytes, type PeerKey } from '../protocol/peer-id.js';

/** Why a peer connection ended; the owner decides from it whether to reopen. */
export type PeerConnectionCloseReason =
  /** close() was called. */
  | 'closed_by_owner'
  /** The relay said the peer went offline (it disconnected or reconnected elsewhere). */
  | 'peer_offline'
  /** The connection to the relay itself ended; reopen once it is back. */
  | 'relay_disconnected'
  /** openConn did not complete (timeout, abort). */
  | 'open_failed';

export interface PeerConnectionEvents {
  data: [payload: Buffer];
  close: [reason: PeerConnectionCloseReason];
}

/** What the owning client provides to a connection. */
export interface PeerConnectionLink {
  send(payload: Buffer): void;
  close(): void;
}

/** What the owning client uses to drive a connection; not part of the public API. */
export interface PeerConnectionControl {
  deliver(payload: Buffer): void;
  markClosed(reason: PeerConnectionCloseReason): void;
}

/** Received payloads kept while nobody consumes them; older ones are dropped first. */
const DEFAULT_QUEUE_LIMIT = 100;

/**
 * A relayed connection to one peer. Receive either with 'data' events or by
 * async iteration (one consumer style per connection); payloads that arrive
 * before a consumer exists are queued (bounded). 'close' fires once, with the
 * reason; iteration then ends after the queue is drained.
 */
export class PeerConnection extends EventEmitter<PeerConnectionEvents> implements AsyncIterable<Buffer> {
  readonly peerKey: PeerKey;
  /** The instance URL of the relay this connection runs through. */
  readonly relayInstanceUrl: string;
  /** Payloads dropped because nobody consumed them fast enough. */
  droppedPayloads = 0;
  readonly #link: PeerConnectionLink;
  readonly #queueLimit: number;
  readonly #queue: Buffer[] = [];
  #pull: ((result: IteratorResult<Buffer>) => void) | undefined;
  #closeReason: PeerConnectionCloseReason | undefined;
  readonly #closed: Promise<PeerConnectionCloseReason>;
  #resolveClosed!: (reason: PeerConnectionCloseReason) => void;

  private constructor(
    peerKey: PeerKey,
    relayInstanceUrl: string,
    link: PeerConnectionLink,
    queueLimit: number,
  ) {
    super();
    this.peerKey = peerKey;
    this.relayInstanceUrl = relayInstanceUrl;
    this.#link = link;
    this.#queueLimit = queueLimit;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // A listener added after payloads were queued still gets them, in order.
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'data') queueMicrotask(() => this.#drain());
    });
  }

  /** Creates a connection and the control handle its client keeps to itself. */
  static create(
    peerKey: PeerKey,
    relayInstanceUrl: string,
    link: PeerConnectionLink,
    queueLimit = DEFAULT_QUEUE_LIMIT,
  ): { connection: PeerConnection; control: PeerConnectionControl } {
    const connection = new PeerConnection(peerKey, relayInstanceUrl, link, queueLimit);
    return {
      connection,
      control: {
        deliver: (payload) => connection.#deliver(payload),
        markClosed: (reason) => connection.#markClosed(reason),
      },
    };
  }

  /** The remote peer's 36-byte wire ID. */
  get peerId(): Buffer {
    return peerKeyToBytes(this.peerKey);
  }

  /** The remote peer ID as NetBird prints it. */
  get peerName(): string {
    return formatPeerKey(this.peerKey);
  }

  get isClosed(): boolean {
    return this.#closeReason !== undefined;
  }

  get closeReason(): PeerConnectionCloseReason | undefined {
    return this.#closeReason;
  }

  /** Resolves with the reason once the connection has closed. */
  whenClosed(): Promise<PeerConnectionCloseReason> {
    return this.#closed;
  }

  /** Sends one payload to the peer; throws a RelayClientError when closed or too large. */
  send(payload: Buffer): void {
    this.#link.send(payload);
  }

  /** Closes the connection and unsubscribes from the peer's state; idempotent. */
  close(): void {
    if (this.#closeReason === undefined) this.#link.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: () => {
        const payload = this.#queue.shift();
        if (payload) return Promise.resolve({ value: payload, done: false });
        if (this.#closeReason !== undefined) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.#pull = resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #deliver(payload: Buffer): void {
    if (this.#closeReason !== undefined) return;
    const pull = this.#pull;
    if (pull && this.#queue.length === 0) {
      this.#pull = undefined;
      pull({ value: payload, done: false });
      return;
    }
    if (this.#queue.length === 0 && this.listenerCount('data') > 0) {
      this.emit('data', payload);
      return;
    }
    this.#queue.push(payload);
    if (this.#queue.length > this.#queueLimit) {
      this.#queue.shift();
      this.droppedPayloads++;
    }
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.listenerCount('data') > 0) {
      this.emit('data', this.#queue.shift() as Buffer);
    }
  }

  #markClosed(reason: PeerConnectionCloseReason): void {
    if (this.#closeReason !== undefined) return;
    this.#closeReason = reason;
    const pull = this.#pull;
    this.#pull = undefined;
    pull?.({ value: undefined, done: true });
    this.#resolveClosed(reason);
    this.emit('close', reason);
  }
}
