import { EventEmitter, once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PeerConnection, PeerConnectionCloseReason } from '../client/peer-connection.js';
import type { PeerIdentity } from '../client/peer-identity.js';
import type { RelayManager } from '../client/relay-manager.js';

export interface ProbeLinkOptions {
  name: string;
  manager: RelayManager;
  remote: PeerIdentity;
  /** The instance URL the remote side is on right now (undefined: assume ours). */
  remoteRelayUrl: () => string | undefined;
  onPayload: (payload: Buffer) => void;
  openTimeoutMs: number;
  /** Pause after a failed open before the next try. */
  retryDelayMs: number;
  logger: Logger;
}

export interface ProbeLinkEvents {
  opened: [connection: PeerConnection];
  closed: [reason: PeerConnectionCloseReason];
}

/**
 * One probe client's connection to the other probe client, kept open like a
 * NetBird peer keeps its relayed connection: reopened whenever it closes
 * (peer went offline, relay dropped us), once the home relay is back.
 */
export class ProbeLink extends EventEmitter<ProbeLinkEvents> {
  readonly name: string;
  readonly #options: ProbeLinkOptions;
  readonly #stop = new AbortController();
  #connection: PeerConnection | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: ProbeLinkOptions) {
    super();
    this.name = options.name;
    this.#options = options;
  }

  get connection(): PeerConnection | undefined {
    return this.#connection;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#connection?.close();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { manager, remote, logger } = this.#options;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        if (!manager.ready) {
          await once(manager, 'homeReconnected', { signal });
          continue;
        }
        const connection = await manager.openConn(remote, {
          relayUrl: this.#options.remoteRelayUrl(),
          timeoutMs: this.#options.openTimeoutMs,
          signal,
        });
        if (signal.aborted) {
          connection.close();
          break;
        }
        this.#connection = connection;
        connection.on('data', this.#options.onPayload);
        this.emit('opened', connection);
        const reason = await connection.whenClosed();
        this.#connection = undefined;
        logger.debug({ link: this.name, reason }, 'probe connection closed');
        this.emit('closed', reason);
      } catch (err) {
        if (signal.aborted) break;
        logger.debug({ link: this.name, err }, 'probe connection open failed');
        await delay(this.#options.retryDelayMs, undefined, { signal }).catch(() => undefined);
      }
    }
  }
}
