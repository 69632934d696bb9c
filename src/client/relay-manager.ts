import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from '../time/clock.js';
import type { PeerConnection } from './peer-connection.js';
import type { PeerIdentity } from './peer-identity.js';
import {
  DEFAULT_RECONNECT_BACKOFF,
  reconnectDelayMs,
  type ReconnectBackoffOptions,
} from './reconnect-backoff.js';
import type { RelayAuth } from './relay-auth.js';
import { RelayClient } from './relay-client.js';
import type { OpenConnOptions, RelayClientOptions } from './relay-client-options.js';
import { RelayClientError } from './relay-client-error.js';
import { resolveManagerTuning, type ManagerTuning } from './relay-manager-options.js';
import { relayWebSocketUrl } from './relay-url.js';

export interface RelayManagerOptions extends Partial<ManagerTuning> {
  /** The home relay: rel://host:port or rels://host:port. */
  homeUrl: string;
  peer: PeerIdentity;
  auth: RelayAuth;
  backoff?: Partial<ReconnectBackoffOptions>;
  /** Timeouts and TLS for every relay client the manager creates. */
  client?: Omit<RelayClientOptions, 'url' | 'peer' | 'auth' | 'clock' | 'logger'>;
  clock?: Clock;
  logger?: Logger;
}

export interface ManagerOpenConnOptions extends OpenConnOptions {
  /**
   * The instance URL the remote peer announced for itself. When it differs
   * from the home relay's instance URL the connection goes through that
   * (foreign) relay, dialled on demand.
   */
  relayUrl?: string;
}

export type ForeignRelayCloseReason = 'unused' | 'disconnected';

export interface RelayManagerEvents {
  /** The home relay session ended; connections through it closed with 'relay_disconnected'. */
  homeDisconnected: [error: RelayClientError | undefined];
  /** A new home session is up: owners of closed connections may reopen now. */
  homeReconnected: [instanceUrl: string];
  /** A reconnect attempt failed; the next one runs after `nextDelayMs`. */
  reconnectFailed: [error: unknown, attempt: number, nextDelayMs: number];
  foreignRelayClosed: [url: string, reason: ForeignRelayCloseReason];
}

interface ForeignRelay {
  readonly url: string;
  client?: RelayClient;
  dial?: Promise<RelayClient>;
  /** When the client last had no connections; undefined while it has some. */
  idleSince: number | undefined;
}

const silentLogger = pino({ level: 'silent' });

/**
 * Keeps one permanent session to the home relay (reconnecting after drops:
 * one quick retry, then exponential backoff with jitter) and short-lived
 * sessions to foreign relays that remote peers live on, closed by a cleanup
 * loop once they carry no connection for `unusedServerTimeMs`.
 */
export class RelayManager extends EventEmitter<RelayManagerEvents> {
  readonly tuning: ManagerTuning;
  readonly #options: RelayManagerOptions;
  readonly #backoff: ReconnectBackoffOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #foreign = new Map<string, ForeignRelay>();
  #home: RelayClient | undefined;
  #running = false;
  #reconnectAttempt = 0;
  #reconnectTimer: TimerHandle | undefined;
  #cleanupTimer: TimerHandle | undefined;

  constructor(options: RelayManagerOptions) {
    super();
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'relay-manager' });
    this.tuning = resolveManagerTuning(
      {
        mtu: options.mtu,
        cleanupIntervalMs: options.cleanupIntervalMs,
        unusedServerTimeMs: options.unusedServerTimeMs,
      },
      this.#logger,
    );
    this.#backoff = { ...DEFAULT_RECONNECT_BACKOFF, ...options.backoff };
    relayWebSocketUrl(options.homeUrl); // a bad URL fails here, not in the background
  }

  /** True while the home relay session is up. */
  get ready(): boolean {
    return this.#home?.ready ?? false;
  }

  /** The home relay's instance URL; peers reach this client through it. */
  get homeInstanceUrl(): string | undefined {
    return this.#home?.instanceUrl;
  }

  get homeClient(): RelayClient | undefined {
    return this.#home;
  }

  /** Consecutive failed reconnect attempts since the last drop. */
  get reconnectAttempt(): number {
    return this.#reconnectAttempt;
  }

  /** Instance URLs of the foreign relays with a session (or a dial) right now. */
  foreignRelayUrls(): string[] {
    return [...this.#foreign.keys()];
  }

  /**
   * Connects the home relay and starts the cleanup loop. When the first
   * connect fails the error is thrown and reconnecting continues in the background.
   */
  async start(): Promise<void> {
    if (this.#running) throw new Error('relay manager already started');
    this.#running = true;
    this.#scheduleCleanup();
    const client = this.#newClient(this.#options.homeUrl);
    try {
      await client.connect();
    } catch (err) {
      this.#scheduleReconnect(err);
      throw err;
    }
    if (!this.#running) {
      await client.close();
      return;
    }
    this.#adoptHome(client);
  }

  /** Opens a connection to `peer` through the home relay, or the foreign relay `relayUrl` names. */
  async openConn(peer: PeerIdentity, options: ManagerOpenConnOptions = {}): Promise<PeerConnection> {
    const home = this.#home;
    if (!home?.ready || !home.instanceUrl) {
      throw new RelayClientError('not_connected', 'home relay is not connected');
    }
    const { relayUrl, ...openOptions } = options;
    if (relayUrl === undefined || relayUrl === home.instanceUrl) return home.openConn(peer, openOptions);
    return this.#openViaForeign(relayUrl, peer, openOptions);
  }

  /**
   * Replaces the home session by a new one with the same identity, the new
   * one connecting before the old one closes (as after a network change).
   */
  async reconnectHome(): Promise<void> {
    const fresh = this.#newClient(this.#options.homeUrl);
    await fresh.connect();
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const old = this.#home;
    old?.removeAllListeners('disconnected');
    this.#adoptHome(fresh);
    this.emit('homeReconnected', fresh.instanceUrl as string);
    // The old session ends last, as after a network change; the relay must ignore this late clean-up.
    await old?.close();
  }

  /** Closes foreign relay clients that have carried no connection for unusedServerTimeMs. */
  cleanUpUnusedRelays(): void {
    const now = this.#clock.now();
    for (const relay of this.#foreign.values()) {
      const { client, idleSince } = relay;
      if (!client || client.hasConnections() || idleSince === undefined) continue;
      if (now - idleSince < this.tuning.unusedServerTimeMs) continue;
      this.#foreign.delete(relay.url);
      client.removeAllListeners('disconnected');
      void client.close();
      this.#logger.debug({ relay: relay.url }, 'closed unused foreign relay client');
      this.emit('foreignRelayClosed', relay.url, 'unused');
    }
  }

  /** Stops reconnecting and the cleanup loop, closes every relay client. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#reconnectTimer !== undefined) this.#clock.clearTimeout(this.#reconnectTimer);
    if (this.#cleanupTimer !== undefined) this.#clock.clearTimeout(this.#cleanupTimer);
    this.#reconnectTimer = this.#cleanupTimer = undefined;
    const clients: RelayClient[] = [];
    if (this.#home) clients.push(this.#home);
    for (const relay of this.#foreign.values()) if (relay.client) clients.push(relay.client);
    this.#home = undefined;
    this.#foreign.clear();
    for (const client of clients) client.removeAllListeners('disconnected');
    await Promise.all(clients.map((client) => client.close()));
  }

  #newClient(url: string): RelayClient {
    return new RelayClient({
      ...this.#options.client,
      url,
      peer: this.#options.peer,
      auth: this.#options.auth,
      clock: this.#clock,
      logger: this.#logger,
    });
  }

  #adoptHome(client: RelayClient): void {
    this.#home = client;
    this.#reconnectAttempt = 0;
    client.once('disconnected', (error) => {
      if (this.#home !== client) return;
      this.#logger.warn({ reason: error?.message }, 'home relay disconnected, reconnecting');
      this.emit('homeDisconnected', error);
      if (this.#running) this.#scheduleReconnect(error);
    });
  }

  #scheduleReconnect(cause: unknown): void {
    if (!this.#running || this.#reconnectTimer !== undefined) return;
    const attempt = this.#reconnectAttempt;
    const delayMs = reconnectDelayMs(attempt, this.#backoff);
    if (attempt > 0) this.emit('reconnectFailed', cause, attempt, delayMs);
    this.#reconnectTimer = this.#clock.setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#reconnect();
    }, delayMs);
  }

  async #reconnect(): Promise<void> {
    if (!this.#running) return;
    const client = this.#newClient(this.#options.homeUrl);
    try {
      await client.connect();
    } catch (err) {
      this.#reconnectAttempt++;
      this.#logger.info(
        { attempt: this.#reconnectAttempt, reason: (err as Error).message },
        'home relay reconnect failed',
      );
      this.#scheduleReconnect(err);
      return;
    }
    // Stopped meanwhile, or reconnectHome() already put a new session in place.
    if (!this.#running || this.#home?.ready) {
      await client.close();
      return;
    }
    this.#adoptHome(client);
    this.#logger.info({ instance_url: client.instanceUrl }, 'home relay reconnected');
    this.emit('homeReconnected', client.instanceUrl as string);
  }

  async #openViaForeign(url: string, peer: PeerIdentity, options: OpenConnOptions): Promise<PeerConnection> {
    let relay = this.#foreign.get(url);
    if (!relay) {
      relay = { url, idleSince: this.#clock.now() };
      this.#foreign.set(url, relay);
    }
    const client = relay.client ?? (await this.#dialForeign(relay));
    relay.idleSince = undefined;
    try {
      const connection = await client.openConn(peer, options);
      connection.once('close', () => this.#noteIdle(relay, client));
      return connection;
    } finally {
      this.#noteIdle(relay, client);
    }
  }

  #noteIdle(relay: ForeignRelay, client: RelayClient): void {
    if (relay.client === client && !client.hasConnections()) relay.idleSince ??= this.#clock.now();
  }

  /** One dial per foreign relay at a time; concurrent openers share it. */
  #dialForeign(relay: ForeignRelay): Promise<RelayClient> {
    relay.dial ??= (async () => {
      let client: RelayClient;
      try {
        client = this.#newClient(relay.url);
        await client.connect();
      } catch (err) {
        if (this.#foreign.get(relay.url) === relay) this.#foreign.delete(relay.url);
        throw err;
      } finally {
        relay.dial = undefined;
      }
      if (this.#foreign.get(relay.url) !== relay || !this.#running) {
        await client.close();
        throw new RelayClientError('client_closed', `relay manager stopped while dialling ${relay.url}`);
      }
      relay.client = client;
      client.once('disconnected', () => {
        if (this.#foreign.get(relay.url) !== relay) return;
        this.#foreign.delete(relay.url);
        this.emit('foreignRelayClosed', relay.url, 'disconnected');
      });
      return client;
    })();
    return relay.dial;
  }

  #scheduleCleanup(): void {
    this.#cleanupTimer = this.#clock.setTimeout(() => {
      this.#cleanupTimer = undefined;
      if (!this.#running) return;
      this.cleanUpUnusedRelays();
      this.#scheduleCleanup();
    }, this.tuning.cleanupIntervalMs);
  }
}
