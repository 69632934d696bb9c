import type { Socket } from 'node:net';
import type { WebSocket, RawData } from 'ws';
import type { HmacTokenValidator } from '../auth/hmac-token.js';
import {
  CLOSE_MESSAGE,
  HEALTH_CHECK_MESSAGE,
  parseAuth,
  parsePeerList,
  readMessageType,
} from '../protocol/codec.js';
import type { ProtocolViolation } from '../protocol/codec.js';
import { HEADER_SIZE, MAX_MESSAGE_SIZE, MessageType, TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import { LastPeerKey } from '../protocol/last-peer-key.js';
import { formatPeerKey, peerKeyFromBytes, type PeerKey } from '../protocol/peer-id.js';
import type { Logger } from '../observability/logger.js';
import type { RelayMetrics } from './relay-metrics.js';
import {
  ORDERLY_CLOSE_REASONS,
  type HandshakeFailure,
  type SessionCloseReason,
  type WsFrameError,
} from './relay-vocabulary.js';
import type { Registration } from '../registry/peer-registry.js';
import { SendQueue, type SendQueueLimits } from './send-queue.js';
import type { WriteBatcher } from './write-batcher.js';
import { writeBinaryFrame } from './binary-frame.js';

export interface SessionTimings {
  readonly handshakeTimeoutMs: number;
  readonly healthCheckIntervalMs: number;
  readonly healthCheckTimeoutMs: number;
}

/** What a session asks of the relay it belongs to. */
export interface SessionHost {
  /** The handshake succeeded: register the peer, then call `session.activate()`. */
  admit(session: PeerSession): void;
  transport(session: PeerSession, message: Buffer): void;
  subscribe(session: PeerSession, peers: PeerKey[]): void;
  unsubscribe(session: PeerSession, peers: PeerKey[]): void;
  /** Called once when an admitted session ends, whatever the cause. */
  ended(session: PeerSession, reason: SessionCloseReason): void;
}

export interface SessionContext {
  readonly host: SessionHost;
  readonly validator: HmacTokenValidator;
  readonly timings: SessionTimings;
  readonly queueLimits: SendQueueLimits;
  readonly metrics: RelayMetrics;
  readonly logger: Logger;
  /** Clock (ms) for timeouts and auth timing. */
  readonly now: () => number;
  /** Coarse clock (ms) for per-packet activity bookkeeping. */
  readonly coarseNow: () => number;
  readonly writeBatcher: WriteBatcher;
}

const BINARY = { binary: true } as const;
const OPEN = 1; // WebSocket.OPEN
const WS_POLICY_VIOLATION = 1008;
const WS_MESSAGE_TOO_BIG = 1009;
const WS_NORMAL = 1000;
/** A peer that has not answered our close frame by then loses its socket (ws itself waits 30 s). */
export const CLOSE_HANDSHAKE_TIMEOUT_MS = 1_000;

type State = 'handshake' | 'admitting' | 'active' | 'closed';

/** One client connection: handshake, health checks, dispatch, bounded sending. */
export class PeerSession {
  readonly remoteAddress: string;
  readonly openedAt: number;
  peerId: Buffer | undefined;
  peerKey: PeerKey | undefined;
  registration: Registration | undefined;
  lastActivityMs: number;
  #state: State = 'handshake';
  readonly #ws: WebSocket;
  readonly #ctx: SessionContext;
  readonly #queue: SendQueue;
  #timer: NodeJS.Timeout | undefined;
  #awaitingHealthAnswer = false;
  #healthCheckSentAt = 0;
  // A peer usually talks to few others: remember the last destination so its Map key is not rebuilt per packet.
  readonly #lastDestination = new LastPeerKey();

  constructor(ws: WebSocket, socket: Socket, remoteAddress: string, ctx: SessionContext) {
    this.#ws = ws;
    this.#ctx = ctx;
    this.remoteAddress = remoteAddress;
    this.openedAt = ctx.now();
    // Idle until it relays something, in either direction.
    this.lastActivityMs = 0;
    const stats = ctx.metrics.stats;
    this.#queue = new SendQueue(
      socket,
      {
        write: (message, inMeshFrame) => {
          // As ws.send would: nothing goes out after the close handshake started.
          if (ws.readyState !== OPEN) return;
          stats.sentBytes += message.length;
          if (socket.writableCorked === 0) ctx.writeBatcher.cork(socket);
          // Our own framing: ws.send costs more per message than the frame it writes.
          writeBinaryFrame(socket, message, inMeshFrame);
          ctx.writeBatcher.wrote(socket);
        },
        onDrop: (reason) => stats.drops[reason]++,
        onControlOverflow: () => this.close('control_overflow'),
      },
      ctx.queueLimits,
    );
    socket.on('drain', () => this.#queue.flush());
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.#onSocketGone('socket_closed'));
    ws.on('error', (err: Error & { code?: string }) => this.#onSocketError(err));
    this.#timer = setTimeout(() => this.#fail('timeout'), ctx.timings.handshakeTimeoutMs);
  }

  get state(): State {
    return this.#state;
  }

  get printableId(): string {
    return this.peerKey ? formatPeerKey(this.peerKey) : '-';
  }

  /** Destination of a transport message this peer sent (read before the ID is rewritten). */
  destinationOf(message: Buffer): PeerKey {
    return this.#lastDestination.read(message, HEADER_SIZE);
  }

  /** Data from another peer; queued (never blocking the sender) until the socket can take it. */
  sendData(message: Buffer): void {
    this.lastActivityMs = this.#ctx.coarseNow();
    this.#queue.pushData(message);
  }

  /**
   * A message from another instance: a view into a mesh frame, whose
   * FRAME_HEADER_ROOM bytes before it may be overwritten (its frame header is
   * written there when it goes out at once).
   */
  sendForwardedData(message: Buffer): void {
    this.lastActivityMs = this.#ctx.coarseNow();
    this.#queue.pushData(message, { pinsLargerBuffer: true });
  }

  sendControl(message: Buffer): void {
    this.#queue.pushControl(message);
  }

  /** Registration done: the auth response goes out first, then whatever was queued meanwhile. */
  activate(registration: Registration, authResponse: Buffer): void {
    if (this.#state !== 'admitting') return;
    this.registration = registration;
    this.#state = 'active';
    this.#ctx.metrics.authenticationTime.observe(this.#ctx.now() - this.openedAt);
    this.#queue.open(authResponse);
    this.#scheduleHealthCheck(this.#ctx.timings.healthCheckIntervalMs);
  }

  /** Refuses an admitted-but-not-active session (registry down): no reply, like any failed handshake. */
  reject(reason: HandshakeFailure): void {
    if (this.#state !== 'admitting') return;
    this.#fail(reason);
  }

  /** Ends the session without a relay close message (replaced by a newer session, protocol error …). */
  close(reason: SessionCloseReason): void {
    if (this.#state === 'closed') return;
    const code =
      reason === 'oversize_message'
        ? WS_MESSAGE_TOO_BIG
        : isViolation(reason)
          ? WS_POLICY_VIOLATION
          : WS_NORMAL;
    this.#end(reason);
    this.#closeSocket(code);
  }

  #closeSocket(code: number): void {
    this.#ws.close(code);
    const ws = this.#ws;
    const timer = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    ws.once('close', () => clearTimeout(timer));
  }

  /** Graceful goodbye: the relay close message, then the WebSocket close. */
  sendCloseAndEnd(reason: SessionCloseReason): void {
    if (this.#state === 'closed') return;
    const wasActive = this.#state === 'active';
    this.#end(reason);
    if (wasActive) {
      this.#ctx.metrics.stats.sentBytes += CLOSE_MESSAGE.length;
      this.#ws.send(CLOSE_MESSAGE, BINARY);
    }
    this.#closeSocket(WS_NORMAL);
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    if (!isBinary) return this.#violation('text_frame');
    switch (this.#state) {
      case 'handshake':
        return this.#onHandshake(data);
      case 'admitting':
        // The client may not speak before it has the auth response.
        return this.#fail('unexpected_type');
      case 'active':
        return this.#onActiveMessage(data);
    }
  }

  #onHandshake(data: Buffer): void {
    const auth = parseAuth(data);
    if (!auth.ok) return this.#fail(auth.violation);
    const check = this.#ctx.validator.check(auth.value.token);
    if (!check.ok) return this.#fail(check.reason);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Copy: the ID outlives the received buffer and is written into every forwarded message.
    this.peerId = Buffer.from(auth.value.peerId);
    this.peerKey = peerKeyFromBytes(this.peerId);
    this.#state = 'admitting';
    this.#ctx.host.admit(this);
  }

  #onActiveMessage(data: Buffer): void {
    if (data.length > MAX_MESSAGE_SIZE) return this.#violation('oversize_message');
    const type = readMessageType(data);
    if (!type.ok) return this.#violation(type.violation);
    switch (type.value) {
      case MessageType.Transport:
        if (data.length < TRANSPORT_HEADER_SIZE) return this.#violation('truncated_message');
        this.#ctx.metrics.stats.receivedBytes += data.length;
        this.lastActivityMs = this.#ctx.coarseNow();
        return this.#ctx.host.transport(this, data);
      case MessageType.HealthCheck:
        return this.#onHealthAnswer();
      case MessageType.SubscribePeerState:
      case MessageType.UnsubscribePeerState: {
        const peers = parsePeerList(data);
        if (!peers.ok) return this.#violation(peers.violation);
        if (type.value === MessageType.SubscribePeerState) this.#ctx.host.subscribe(this, peers.value);
        else this.#ctx.host.unsubscribe(this, peers.value);
        return;
      }
      case MessageType.Close:
        this.#end('client_close');
        this.#closeSocket(WS_NORMAL);
        return;
      default:
        return this.#violation('unexpected_type');
    }
  }

  #onHealthAnswer(): void {
    if (!this.#awaitingHealthAnswer) return;
    this.#awaitingHealthAnswer = false;
    clearTimeout(this.#timer);
    const nextIn = this.#healthCheckSentAt + this.#ctx.timings.healthCheckIntervalMs - this.#ctx.now();
    this.#scheduleHealthCheck(Math.max(0, nextIn));
  }

  #scheduleHealthCheck(delayMs: number): void {
    this.#timer = setTimeout(() => this.#onHealthTimer(), delayMs);
  }

  #onHealthTimer(): void {
    if (this.#state !== 'active') return;
    if (this.#awaitingHealthAnswer) {
      this.close('health_check_timeout');
      return;
    }
    const { healthCheckIntervalMs, healthCheckTimeoutMs } = this.#ctx.timings;
    this.#awaitingHealthAnswer = true;
    this.#healthCheckSentAt = this.#ctx.now();
    this.sendControl(HEALTH_CHECK_MESSAGE);
    this.#timer = setTimeout(() => this.#onHealthTimer(), healthCheckTimeoutMs - healthCheckIntervalMs);
  }

  #violation(violation: ProtocolViolation | 'text_frame'): void {
    if (this.#state === 'handshake' || this.#state === 'admitting') return this.#fail(violation);
    this.#ctx.logger.info(
      { peer_id: this.printableId, remote: this.remoteAddress, reason: violation },
      'protocol violation, closing session',
    );
    this.close(violation);
  }

  /** Handshake failure: counted, logged once, closed without a reply. */
  #fail(reason: HandshakeFailure): void {
    if (this.#state === 'closed') return;
    const admitted = this.#state === 'admitting';
    this.#ctx.metrics.handshakeFailures.labels(reason).inc();
    this.#ctx.logger.info({ remote: this.remoteAddress, reason }, 'handshake failed');
    this.#state = 'closed';
    clearTimeout(this.#timer);
    this.#queue.close();
    if (admitted) this.#ctx.host.ended(this, 'socket_closed');
    this.#ws.terminate();
  }

  #onSocketError(err: Error & { code?: string }): void {
    // ws reports oversize frames as errors before closing the socket.
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return this.#violation('oversize_message');
    const frameError = wsFrameError(err.code);
    if (this.#state === 'handshake') this.#fail(frameError ?? 'socket_error');
    else this.#onSocketGone(frameError ?? 'socket_closed');
  }

  #onSocketGone(reason: SessionCloseReason): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'handshake') return this.#fail('socket_error');
    this.#end(reason);
  }

  #end(reason: SessionCloseReason): void {
    const wasAdmitted = this.#state === 'admitting' || this.#state === 'active';
    this.#state = 'closed';
    clearTimeout(this.#timer);
    this.#queue.close();
    if (wasAdmitted) {
      this.#ctx.metrics.sessionCloses.labels(reason).inc();
      this.#ctx.host.ended(this, reason);
    }
  }
}

const ORDERLY_CLOSES: ReadonlySet<SessionCloseReason> = new Set<SessionCloseReason>(ORDERLY_CLOSE_REASONS);

function isViolation(reason: SessionCloseReason): boolean {
  return !ORDERLY_CLOSES.has(reason);
}

/** ws refuses these frames itself; each is a peer's protocol error worth its own reason. */
const WS_FRAME_ERRORS: Readonly<Record<string, WsFrameError>> = {
  WS_ERR_UNEXPECTED_RSV_1: 'ws_compressed_frame',
  WS_ERR_UNEXPECTED_RSV_2_3: 'ws_reserved_bits',
  WS_ERR_EXPECTED_MASK: 'ws_unmasked_frame',
  WS_ERR_UNEXPECTED_MASK: 'ws_unmasked_frame',
  WS_ERR_INVALID_OPCODE: 'ws_invalid_opcode',
  WS_ERR_EXPECTED_FIN: 'ws_fragmented_control',
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 'ws_control_too_long',
  WS_ERR_INVALID_CLOSE_CODE: 'ws_invalid_close',
  WS_ERR_INVALID_UTF8: 'ws_invalid_utf8',
};

function wsFrameError(code: string | undefined): WsFrameError | undefined {
  return code === undefined ? undefined : WS_FRAME_ERRORS[code];
}
