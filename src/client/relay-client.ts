import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import { WebSocket } from 'ws';
import {
  CLOSE_MESSAGE,
  encodeAuth,
  encodePeerLists,
  encodeTransport,
  HEALTH_CHECK_MESSAGE,
  parseAuthResponse,
  parsePeerList,
  readMessageType,
  transportPeerKey,
} from '../protocol/codec.js';
import {
  MAX_AUTH_RESPONSE_SIZE,
  MAX_MESSAGE_SIZE,
  MessageType,
  TRANSPORT_HEADER_SIZE,
} from '../protocol/constants.js';
import { formatPeerKey, type PeerKey } from '../protocol/peer-id.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { EarlyMessageBuffer } from './early-message-buffer.js';
import { PeerConnection, type PeerConnectionControl } from './peer-connection.js';
import { peerIdOf, peerKeyOf, type PeerIdentity } from './peer-identity.js';
import { tokenFor, type RelayAuth } from './relay-auth.js';
import { RelayClientError } from './relay-client-error.js';
import { SilenceWatchdog } from './silence-watchdog.js';
import { relayWebSocketUrl } from './relay-url.js';

/** NetBird's client timings; every one may be shortened for tests. */
export const CLIENT_DEFAULTS = {
  connectTimeoutMs: 30_000,
  authTimeoutMs: 8_000,
  healthCheckTimeoutMs: 35_000,
  openTimeoutMs: 30_000,
  earlyMessageTtlMs: 5_000,
  earlyMessageCapacity: 10_000,
} as const;

/** Largest payload one transport message can carry. */
export const MAX_TRANSPORT_PAYLOAD = MAX_MESSAGE_SIZE - TRANSPORT_HEADER_SIZE;

export interface RelayClientOptions {
  /** rel://host:port or rels://host:port */
  url: string;
  /** This client's own identity (identifier string or 36-byte peer ID). */
  peer: PeerIdentity;
  auth: RelayAuth;
  connectTimeoutMs?: number;
  /** How long to wait for the auth response after sending auth. */
  authTimeoutMs?: number;
  /** A server that sends no health check for this long is dropped. */
  healthCheckTimeoutMs?: number;
  /** Default wait for a peer to come online in openConn. */
  openTimeoutMs?: number;
  earlyMessageTtlMs?: number;
  earlyMessageCapacity?: number;
  /** TLS settings for rels:// (e.g. a test CA). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  clock?: Clock;
  logger?: Logger;
}

export interface OpenConnOptions {
  /** How long to wait for the peer to be online (default 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type RelayClientState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface RelayClientEvents {
  /** The session ended; `error` says why, undefined when close() was called. */
  disconnected: [error: RelayClientError | undefined];
  /** A peer with no open connection sent a message; it is kept briefly for a later openConn. */
  earlyMessage: [peer: PeerKey];
}

interface PendingOpen {
  resolve(): void;
  reject(error: RelayClientError): void;
}

interface OpenConnection {
  connection: PeerConnection;
  control: PeerConnectionControl;
  pending?: PendingOpen;
}

/** One authenticated WebSocket and everything that lives exactly as long as it. */
interface Session {
  readonly ws: WebSocket;
  readonly watchdog: SilenceWatchdog;
  instanceUrl?: string;
  /** Set by the first error seen, reported when the socket closes. */
  failure?: RelayClientError;
  handshake?: { resolve(url: string): void; reject(error: RelayClientError): void; timer: TimerHandle };
}

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
  readonly #connections = new Map<PeerKey, OpenConnection>();
  readonly #earlyMessages: EarlyMessageBuffer;
  #session: Session | undefined;
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
    const { tls } = this.#options;
    const ws = new WebSocket(this.#wsUrl, {
      perMessageDeflate: false,
      // Nothing larger is valid; ws refuses it before buffering it.
      maxPayload: MAX_MESSAGE_SIZE,
      handshakeTimeout: this.#options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
      ...(tls ?? {}),
    });
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
    const session: Session = { ws, watchdog };
    this.#session = session;
    const instanceUrl = new Promise<string>((resolve, reject) => {
      session.handshake = { resolve, reject, timer: undefined };
    });
    ws.on('open', () => this.#onOpen(session));
    ws.on('message', (data, isBinary) => this.#onMessage(session, data as Buffer, isBinary));
    ws.on('error', (err) => this.#recordFailure(session, describeSocketError(err, session)));
    ws.on('unexpected-response', (_req, res) => {
      this.#recordFailure(
        session,
        new RelayClientError(
          'connect_failed',
          `relay answered HTTP ${res.statusCode} instead of a WebSocket upgrade`,
        ),
      );
      ws.terminate();
    });
    ws.on('close', (code) => this.#onSocketClosed(session, code));
    try {
      const url = await instanceUrl;
      this.#logger.debug({ instanceUrl: url }, 'relay session established');
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
    this.#connections.set(key, entry);
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
    if (session.ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        session.ws.once('close', () => resolve());
        session.ws.close();
        // A server that never answers the closing handshake must not keep us waiting.
        const timer = this.#clock.setTimeout(() => session.ws.terminate(), 1_000);
        session.ws.once('close', () => this.#clock.clearTimeout(timer));
      });
    }
  }

  /** Drops the session as if the network failed (no close message); for tests and the prober. */
  terminate(): void {
    const session = this.#session;
    if (!session) return;
    this.#recordFailure(session, new RelayClientError('connection_lost', 'connection terminated locally'));
    session.ws.terminate();
  }

  #onOpen(session: Session): void {
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

  #onMessage(session: Session, data: Buffer, isBinary: boolean): void {
    if (session !== this.#session || session.failure) return;
    if (!isBinary) {
      this.#fail(session, new RelayClientError('malformed_message', 'relay sent a text message'));
      return;
    }
    if (session.handshake) this.#onAuthResponse(session, data);
    else this.#onSessionMessage(session, data);
  }

  #onAuthResponse(session: Session, data: Buffer): void {
    const type = readMessageType(data);
    if (!type.ok) {
      this.#fail(
        session,
        new RelayClientError('malformed_message', `relay sent a bad first message (${type.violation})`),
      );
      return;
    }
    if (type.value !== MessageType.AuthResponse) {
      this.#fail(
        session,
        new RelayClientError(
          'unexpected_first_message',
          `relay sent message type ${type.value} before the auth response`,
        ),
      );
      return;
    }
    if (data.length > MAX_AUTH_RESPONSE_SIZE) {
      this.#fail(
        session,
        new RelayClientError(
          'oversize_message',
          `auth response of ${data.length} bytes exceeds ${MAX_AUTH_RESPONSE_SIZE}`,
        ),
      );
      return;
    }
    const parsed = parseAuthResponse(data);
    if (!parsed.ok) {
      this.#fail(
        session,
        new RelayClientError('malformed_message', `bad auth response (${parsed.violation})`),
      );
      return;
    }
    const handshake = session.handshake;
    session.handshake = undefined;
    if (!handshake) return;
    this.#clock.clearTimeout(handshake.timer);
    session.instanceUrl = parsed.value;
    this.#state = 'connected';
    session.watchdog.feed();
    handshake.resolve(parsed.value);
  }

  #onSessionMessage(session: Session, data: Buffer): void {
    const type = readMessageType(data);
    if (!type.ok) {
      this.#fail(
        session,
        new RelayClientError('malformed_message', `relay sent a bad message (${type.violation})`),
      );
      return;
    }
    switch (type.value) {
      case MessageType.HealthCheck:
        session.ws.send(HEALTH_CHECK_MESSAGE);
        session.watchdog.feed();
        return;
      case MessageType.Transport:
        this.#onTransport(session, data);
        return;
      case MessageType.PeersOnline:
      case MessageType.PeersWentOffline: {
        const peers = parsePeerList(data);
        if (!peers.ok) {
          this.#fail(
            session,
            new RelayClientError('malformed_message', `bad peer list (${peers.violation})`),
          );
          return;
        }
        if (type.value === MessageType.PeersOnline) this.#onPeersOnline(peers.value);
        else this.#onPeersWentOffline(peers.value);
        return;
      }
      case MessageType.Close:
        this.#fail(session, new RelayClientError('closed_by_server', `relay ${this.url} closed the session`));
        return;
      default:
        this.#fail(
          session,
          new RelayClientError(
            'malformed_message',
            `relay sent message type ${type.value}, which servers never send`,
          ),
        );
    }
  }

  #onTransport(session: Session, data: Buffer): void {
    const sender = transportPeerKey(data);
    if (!sender.ok) {
      this.#fail(
        session,
        new RelayClientError('malformed_message', `bad transport message (${sender.violation})`),
      );
      return;
    }
    const payload = data.subarray(TRANSPORT_HEADER_SIZE);
    const entry = this.#connections.get(sender.value);
    if (entry) entry.control.deliver(payload);
    else if (this.#earlyMessages.put(sender.value, payload)) this.emit('earlyMessage', sender.value);
    else
      this.#logger.warn(
        { peer_id: formatPeerKey(sender.value) },
        'early message buffer full, message dropped',
      );
  }

  #onPeersOnline(peers: PeerKey[]): void {
    for (const key of peers) {
      const entry = this.#connections.get(key);
      const pending = entry?.pending;
      if (!entry || !pending) continue;
      entry.pending = undefined;
      pending.resolve();
    }
  }

  #onPeersWentOffline(peers: PeerKey[]): void {
    const closed: PeerKey[] = [];
    for (const key of peers) {
      const entry = this.#connections.get(key);
      if (!entry) continue;
      this.#connections.delete(key);
      closed.push(key);
      this.#logger.debug({ peer_id: formatPeerKey(key) }, 'peer went offline, connection closed');
      entry.pending?.reject(new RelayClientError('peer_offline', `peer ${formatPeerKey(key)} went offline`));
      entry.pending = undefined;
      entry.control.markClosed('peer_offline');
    }
    if (closed.length > 0) this.#sendPeerList(MessageType.UnsubscribePeerState, closed);
  }

  #failOpen(entry: OpenConnection, error: RelayClientError): void {
    const pending = entry.pending;
    if (!pending || this.#connections.get(entry.connection.peerKey) !== entry) return;
    this.#connections.delete(entry.connection.peerKey);
    entry.pending = undefined;
    this.#sendPeerList(MessageType.UnsubscribePeerState, [entry.connection.peerKey]);
    entry.control.markClosed('open_failed');
    pending.reject(error);
  }

  #closeByOwner(entry: OpenConnection): void {
    if (this.#connections.get(entry.connection.peerKey) !== entry) return;
    this.#connections.delete(entry.connection.peerKey);
    this.#sendPeerList(MessageType.UnsubscribePeerState, [entry.connection.peerKey]);
    entry.pending?.reject(
      new RelayClientError(
        'connection_closed',
        `connection to ${entry.connection.peerName} was closed while opening`,
      ),
    );
    entry.pending = undefined;
    entry.control.markClosed('closed_by_owner');
  }

  #sendTransport(entry: OpenConnection, payload: Buffer): void {
    if (entry.connection.isClosed || this.#connections.get(entry.connection.peerKey) !== entry) {
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
  #fail(session: Session, error: RelayClientError): void {
    this.#recordFailure(session, error);
    session.ws.terminate();
  }

  #recordFailure(session: Session, error: RelayClientError): void {
    session.failure ??= error;
  }

  #onSocketClosed(session: Session, code: number): void {
    const error =
      session.failure ??
      (session.handshake
        ? new RelayClientError(
            'auth_rejected',
            `relay ${this.url} closed the connection before the auth response (code ${code}); is the token valid?`,
          )
        : new RelayClientError('connection_lost', `connection to relay ${this.url} closed (code ${code})`));
    this.#endSession(session, error);
  }

  #endSession(session: Session, error: RelayClientError | undefined): void {
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
    const entries = [...this.#connections.values()];
    this.#connections.clear();
    for (const entry of entries) {
      entry.pending?.reject(
        new RelayClientError(
          error ? 'not_connected' : 'client_closed',
          `relay session ended while opening ${entry.connection.peerName}`,
        ),
      );
      entry.pending = undefined;
      entry.control.markClosed('relay_disconnected');
    }
    if (session.ws.readyState !== WebSocket.CLOSED && error) session.ws.terminate();
    if (wasConnected) {
      if (error) this.#logger.info({ code: error.code, reason: error.message }, 'relay session ended');
      this.emit('disconnected', error);
    }
  }
}

function describeSocketError(err: Error & { code?: string }, session: Session): RelayClientError {
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return new RelayClientError(
      'oversize_message',
      `relay sent a message larger than ${MAX_MESSAGE_SIZE} bytes`,
      {
        cause: err,
      },
    );
  }
  if (err.code?.startsWith('WS_ERR_')) {
    return new RelayClientError('malformed_message', `relay broke the WebSocket protocol: ${err.message}`, {
      cause: err,
    });
  }
  const phase = session.instanceUrl === undefined ? 'connect_failed' : 'connection_lost';
  return new RelayClientError(phase, `relay socket error: ${err.message}`, { cause: err });
}
