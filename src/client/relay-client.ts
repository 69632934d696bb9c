import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import { WebSocket } from 'ws';
import {
  CLOSE_MESSAGE,
  encodeAuth,
  encodePeerLists,
  encodeTransport,
  HEALTH_CHECK_MESSAGE,
} from '../protocol/codec.js';
import { MessageType, TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import { formatPeerKey, type PeerKey } from '../protocol/peer-id.js';
import { systemClock, type Clock } from '../time/clock.js';
import { EarlyMessageBuffer } from './early-message-buffer.js';
import { OpenConnections, type OpenConnection } from './open-connections.js';
import { PeerConnection } from './peer-connection.js';
import { peerIdOf, peerKeyOf, type PeerIdentity } from './peer-identity.js';
import { tokenFor } from './relay-auth.js';
import { RelayClientError } from './relay-client-error.js';
import { SilenceWatchdog } from './silence-watchdog.js';
import {
  CLIENT_DEFAULTS,
  MAX_TRANSPORT_PAYLOAD,
  type OpenConnOptions,
  type RelayClientEvents,
  type RelayClientOptions,
  type RelayClientState,
} from './relay-client-options.js';
import { closeSocket, dialRelay, type RelaySession } from './relay-session.js';
import { relayWebSocketUrl } from './relay-url.js';
import {
  describeClose,
  describeRefusedUpgrade,
  describeSocketError,
  readAuthResponse,
  readSessionMessage,
} from './server-messages.js';

const silentLogger = pino({ level: 'silent' });

/**
 * A client of one relay server, behaving like NetBird's Go client: it
 * authenticates, keeps the session alive by echoing health checks, and opens
 * connections to peers once the relay says they are online. A peer that goes
 * offline has its connection closed (reason 'peer_offline') and unsubscribed.
 * connect() may be called again after a disconnect; close() is final.
 */
export class RelayClient extends EventEmitter<RelayClientEvents> {
  readonly url: string;
  readonly peerId: Buffer;
  readonly #wsUrl: string;
  readonly #options: RelayClientOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #connections = new OpenConnections();
  readonly #earlyMessages: EarlyMessageBuffer;
  #session: RelaySession | undefined;
  #state: RelayClientState = 'idle';

  constructor(options: RelayClientOptions) {
    super();
    this.#options = options;
    this.url = options.url;
    this.#wsUrl = relayWebSocketUrl(options.url);
    this.peerId = peerIdOf(options.peer);
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ relay: options.url });
    this.#earlyMessages = new EarlyMessageBuffer({
      ttlMs: options.earlyMessageTtlMs ?? CLIENT_DEFAULTS.earlyMessageTtlMs,
      capacity: options.earlyMessageCapacity ?? CLIENT_DEFAULTS.earlyMessageCapacity,
      clock: this.#clock,
    });
  }

  /** Creates a client and connects it. */
  static async connect(options: RelayClientOptions): Promise<RelayClient> {
    const client = new RelayClient(options);
    await client.connect();
    return client;
  }

  get state(): RelayClientState {
    return this.#state;
  }

  get ready(): boolean {
    return this.#state === 'connected';
  }

  /** The relay instance this client is on, as the relay announced it; undefined while not connected. */
  get instanceUrl(): string | undefined {
    return this.#state === 'connected' ? this.#session?.instanceUrl : undefined;
  }

  /** Number of peer connections, open or being opened. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  hasConnections(): boolean {
    return this.#connections.size > 0;
  }

  /** Dials, authenticates and waits for the auth response; rejects with a RelayClientError. */
  async connect(): Promise<void> {
    if (this.#state === 'closed') throw new RelayClientError('client_closed', 'relay client was closed');
    if (this.#state === 'connecting' || this.#state === 'connected') {
      throw new RelayClientError('connect_failed', `relay client is already ${this.#state}`);
    }
    this.#state = 'connecting';
    const ws = dialRelay(this.#wsUrl, this.#options);
    const healthCheckTimeoutMs = this.#options.healthCheckTimeoutMs ?? CLIENT_DEFAULTS.healthCheckTimeoutMs;
    const watchdog = new SilenceWatchdog(
      healthCheckTimeoutMs,
      () =>
        this.#fail(
          session,
          new RelayClientError(
            'health_check_timeout',
            `no health check from ${this.url} for ${healthCheckTimeoutMs} ms`,
          ),
        ),
      this.#clock,
    );
    const session: RelaySession = { ws, watchdog };
    this.#session = session;
    const instanceUrl = new Promise<string>((resolve, reject) => {
      session.handshake = { resolve, reject, timer: undefined };
    });
    ws.on('open', () => this.#onOpen(session));
    ws.on('message', (data, isBinary) => this.#onMessage(session, data as Buffer, isBinary));
    ws.on('error', (err) =>
      this.#recordFailure(
        session,
        describeSocketError(err, { established: session.instanceUrl !== undefined }),
      ),
    );
    ws.on('unexpected-response', (_req, res) => {
      this.#recordFailure(session, describeRefusedUpgrade(res.statusCode));
      ws.terminate();
    });
    ws.on('close', (code) => this.#onSocketClosed(session, code));
    try {
      const url = await instanceUrl;
      this.#logger.debug({ instance_url: url }, 'relay session established');
    } catch (err) {
      if (this.#state === 'connecting') this.#state = 'disconnected';
      throw err;
    }
  }

  /**
   * Subscribes to `peer` and waits until the relay says it is online, then
   * returns the connection. Rejects with 'connection_already_exists' while a
   * connection to that peer exists (or is being opened).
   */
  async openConn(peer: PeerIdentity, options: OpenConnOptions = {}): Promise<PeerConnection> {
    const session = this.#session;
    if (this.#state !== 'connected' || !session?.instanceUrl) {
      throw new RelayClientError('not_connected', 'relay client is not connected');
    }
    const key = peerKeyOf(peer);
    if (this.#connections.has(key)) {
      throw new RelayClientError(
        'connection_already_exists',
        `connection already exists: ${formatPeerKey(key)}`,
      );
    }
    if (options.signal?.aborted) {
      throw new RelayClientError('open_aborted', `opening ${formatPeerKey(key)} was aborted`);
    }
    const { connection, control } = PeerConnection.create(key, session.instanceUrl, {
      send: (payload) => this.#sendTransport(entry, payload),
      close: () => this.#closeByOwner(entry),
    });
    const entry: OpenConnection = { connection, control };
    this.#connections.add(entry);
    const early = this.#earlyMessages.take(key);
    if (early) control.deliver(early);

    const timeoutMs = options.timeoutMs ?? this.#options.openTimeoutMs ?? CLIENT_DEFAULTS.openTimeoutMs;
    const online = new Promise<void>((resolve, reject) => (entry.pending = { resolve, reject }));
    const timer = this.#clock.setTimeout(
      () =>
        this.#failOpen(
          entry,
          new RelayClientError(
            'open_timeout',
            `peer ${formatPeerKey(key)} did not come online within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    const onAbort = (): void =>
      this.#failOpen(
        entry,
        new RelayClientError('open_aborted', `opening ${formatPeerKey(key)} was aborted`),
      );
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.#sendPeerList(MessageType.SubscribePeerState, [key]);
    try {
      await online;
      return connection;
    } finally {
      this.#clock.clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Sends close to the relay, closes every peer connection; final. */
  async close(): Promise<void> {
    const session = this.#session;
    const wasConnected = this.#state === 'connected';
    this.#state = 'closed';
    if (!session) return;
    if (wasConnected && session.ws.readyState === WebSocket.OPEN) session.ws.send(CLOSE_MESSAGE);
    this.#endSession(session, undefined);
    await closeSocket(session.ws, this.#clock);
  }

  /** Drops the session as if the network failed (no close message); for tests and the prober. */
  terminate(): void {
    const session = this.#session;
    if (!session) return;
    this.#recordFailure(session, new RelayClientError('connection_lost', 'connection terminated locally'));
    session.ws.terminate();
  }

  #onOpen(session: RelaySession): void {
    if (!session.handshake) return;
    const authTimeoutMs = this.#options.authTimeoutMs ?? CLIENT_DEFAULTS.authTimeoutMs;
    session.handshake.timer = this.#clock.setTimeout(() => {
      this.#fail(
        session,
        new RelayClientError('auth_timeout', `no auth response from ${this.url} within ${authTimeoutMs} ms`),
      );
    }, authTimeoutMs);
    let token: Buffer;
    try {
      token = tokenFor(this.#options.auth);
    } catch (cause) {
      this.#fail(
        session,
        new RelayClientError('connect_failed', 'could not create an auth token', { cause }),
      );
      return;
    }
    session.ws.send(encodeAuth(this.peerId, token));
  }

  #onMessage(session: RelaySession, data: Buffer, isBinary: boolean): void {
    if (session !== this.#session || session.failure) return;
    if (!isBinary) {
      this.#fail(session, new RelayClientError('malformed_message', 'relay sent a text message'));
      return;
    }
    if (session.handshake) this.#onAuthResponse(session, data);
    else this.#onSessionMessage(session, data);
  }

  #onAuthResponse(session: RelaySession, data: Buffer): void {
    const instanceUrl = readAuthResponse(data);
    if (instanceUrl instanceof RelayClientError) {
      this.#fail(session, instanceUrl);
      return;
    }
    const handshake = session.handshake;
    session.handshake = undefined;
    if (!handshake) return;
    this.#clock.clearTimeout(handshake.timer);
    session.instanceUrl = instanceUrl;
    this.#state = 'connected';
    session.watchdog.feed();
    handshake.resolve(instanceUrl);
  }

  #onSessionMessage(session: RelaySession, data: Buffer): void {
    const message = readSessionMessage(data, this.url);
    if (message instanceof RelayClientError) {
      this.#fail(session, message);
      return;
    }
    switch (message.type) {
      case MessageType.HealthCheck:
        session.ws.send(HEALTH_CHECK_MESSAGE);
        session.watchdog.feed();
        return;
      case MessageType.Transport:
        this.#onTransport(message.sender, data);
        return;
      case MessageType.PeersOnline:
        this.#onPeersOnline(message.peers);
        return;
      case MessageType.PeersWentOffline:
        this.#onPeersWentOffline(message.peers);
    }
  }

  #onTransport(sender: PeerKey, data: Buffer): void {
    const payload = data.subarray(TRANSPORT_HEADER_SIZE);
    const entry = this.#connections.get(sender);
    if (entry) entry.control.deliver(payload);
    else if (this.#earlyMessages.put(sender, payload)) this.emit('earlyMessage', sender);
    else this.#logger.warn({ peer_id: formatPeerKey(sender) }, 'early message buffer full, message dropped');
  }

  #onPeersOnline(peers: PeerKey[]): void {
    this.#connections.markOnline(peers);
  }

  #onPeersWentOffline(peers: PeerKey[]): void {
    const closed = this.#connections.closeOffline(peers, (key) =>
      this.#logger.debug({ peer_id: formatPeerKey(key) }, 'peer went offline, connection closed'),
    );
    if (closed.length > 0) this.#sendPeerList(MessageType.UnsubscribePeerState, closed);
  }

  #failOpen(entry: OpenConnection, error: RelayClientError): void {
    if (this.#connections.failOpen(entry, error))
      this.#sendPeerList(MessageType.UnsubscribePeerState, [entry.connection.peerKey]);
  }

  #closeByOwner(entry: OpenConnection): void {
    if (this.#connections.closeByOwner(entry))
      this.#sendPeerList(MessageType.UnsubscribePeerState, [entry.connection.peerKey]);
  }

  #sendTransport(entry: OpenConnection, payload: Buffer): void {
    if (entry.connection.isClosed || !this.#connections.holds(entry)) {
      throw new RelayClientError('connection_closed', `connection to ${entry.connection.peerName} is closed`);
    }
    if (payload.length > MAX_TRANSPORT_PAYLOAD) {
      throw new RelayClientError(
        'payload_too_large',
        `payload of ${payload.length} bytes exceeds the relay's ${MAX_TRANSPORT_PAYLOAD}`,
      );
    }
    this.#session?.ws.send(encodeTransport(entry.connection.peerId, payload));
  }

  #sendPeerList(type: MessageType, peers: PeerKey[]): void {
    const ws = this.#session?.ws;
    if (this.#state !== 'connected' || ws?.readyState !== WebSocket.OPEN) return;
    for (const message of encodePeerLists(type, peers)) ws.send(message);
  }

  /** The first failure of a session wins; the socket is dropped and the session ends. */
  #fail(session: RelaySession, error: RelayClientError): void {
    this.#recordFailure(session, error);
    session.ws.terminate();
  }

  #recordFailure(session: RelaySession, error: RelayClientError): void {
    session.failure ??= error;
  }

  #onSocketClosed(session: RelaySession, code: number): void {
    this.#endSession(
      session,
      session.failure ?? describeClose(code, this.url, { duringHandshake: session.handshake !== undefined }),
    );
  }

  #endSession(session: RelaySession, error: RelayClientError | undefined): void {
    if (session !== this.#session) return;
    this.#session = undefined;
    const handshake = session.handshake;
    session.handshake = undefined;
    if (handshake) {
      this.#clock.clearTimeout(handshake.timer);
      handshake.reject(
        error ?? new RelayClientError('client_closed', 'relay client was closed while connecting'),
      );
    }
    const wasConnected = session.instanceUrl !== undefined;
    if (this.#state !== 'closed') this.#state = 'disconnected';
    session.watchdog.stop();
    this.#earlyMessages.clear();
    this.#connections.endAll(error ? 'not_connected' : 'client_closed');
    if (session.ws.readyState !== WebSocket.CLOSED && error) session.ws.terminate();
    if (wasConnected) {
      if (error) this.#logger.info({ code: error.code, reason: error.message }, 'relay session ended');
      this.emit('disconnected', error);
    }
  }
}
