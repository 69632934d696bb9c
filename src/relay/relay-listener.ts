import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { MAX_MESSAGE_SIZE } from '../protocol/constants.js';
import {
  HttpConnectionLimiter,
  TIMEOUT_CHECK_INTERVAL_MS,
  type HttpRefusal,
} from '../observability/http-limits.js';
import { refuseUpgrade } from '../observability/upgrade-refusal.js';
import type { HostPort } from '../net/host-port.js';
import type { AbuseGuard, AbuseRefusal } from './abuse-guard.js';
import type { ClientAddressResolver } from './client-address.js';
import { PeerSession, type SessionContext } from './peer-session.js';

export const RELAY_PATH = '/relay';

export interface RelayListenerOptions {
  readonly listen: HostPort;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly session: SessionContext;
  readonly clientAddress: ClientAddressResolver;
  /** Most simultaneous TCP connections; beyond it new ones are refused by the kernel-side accept. */
  readonly maxConnections: number;
  /** Most connections that have not upgraded yet; the oldest idle one goes first. */
  readonly maxPendingConnections?: number;
  readonly onRefused?: (reason: HttpRefusal | 'handshake_deadline') => void;
  /** Per-IP limits; refusals are reported through onAbuse. */
  readonly abuse?: AbuseGuard;
  readonly onAbuse?: (reason: AbuseRefusal) => void;
}

const DEFAULT_MAX_PENDING_CONNECTIONS = 1024;

/** One TCP connection of this listener, the same for its TLS socket and the TCP socket under it. */
function connectionKey(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}

/** The public WebSocket endpoint (ws or wss) at /relay. */
export class RelayListener {
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #options: RelayListenerOptions;
  readonly #limiter: HttpConnectionLimiter;
  // Pre-upgrade deadline per TCP connection, from accept, covering the TLS handshake too (Node's own
  // header timeout is only checked on an interval). Keyed by the client's address and port: the
  // upgrade sees the TLS socket, the accept the TCP socket under it.
  readonly #deadlines = new Map<string, NodeJS.Timeout>();
  #accepting = false;

  constructor(options: RelayListenerOptions) {
    this.#options = options;
    const deadlineMs = options.session.timings.handshakeTimeoutMs;
    const http = { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS };
    this.#server = options.tls
      ? createHttpsServer({
          ...http,
          cert: options.tls.cert,
          key: options.tls.key,
          // A backstop only: the deadline below fires first and is counted.
          handshakeTimeout: deadlineMs + 1_000,
        })
      : createHttpServer(http);
    this.#server.maxConnections = options.maxConnections;
    const onRefused = options.onRefused ?? (() => {});
    this.#limiter = new HttpConnectionLimiter(
      this.#server,
      {
        headersTimeoutMs: deadlineMs,
        requestTimeoutMs: deadlineMs,
        keepAliveTimeoutMs: 5_000,
        maxRequestsPerSocket: 100,
        maxInFlightPerSocket: 4,
        maxUnreadResponseBytes: 64 * 1024,
        maxConnections: options.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS,
      },
      onRefused,
    );
    // Slow or silent clients must not hold a socket past the handshake deadline, whatever they send.
    const abuse = options.abuse;
    if (abuse !== undefined) {
      // Before TLS and before any HTTP parsing: the cheapest place to turn a flood away.
      this.#server.prependListener('connection', (socket: Socket) => {
        const ip = socket.remoteAddress ?? 'unknown';
        if (options.clientAddress.isTrustedProxy(ip)) return;
        const refusal = abuse.connect(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
        if (refusal === undefined) return;
        options.onAbuse?.(refusal);
        socket.destroy();
      });
    }
    this.#server.on('connection', (socket: Socket) => {
      if (socket.destroyed) return; // refused above
      const key = connectionKey(socket);
      const timer = setTimeout(() => {
        this.#deadlines.delete(key);
        if (socket.destroyed) return;
        onRefused('handshake_deadline');
        socket.destroy();
      }, deadlineMs);
      timer.unref();
      this.#deadlines.set(key, timer);
      socket.once('close', () => {
        clearTimeout(timer);
        if (this.#deadlines.get(key) === timer) this.#deadlines.delete(key);
      });
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      // One byte over the limit, so an oversize message reaches the codec and is refused by it, counted.
      maxPayload: MAX_MESSAGE_SIZE + 1,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.#server.on('request', (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head),
    );
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  async start(): Promise<HostPort> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.listen.port, this.#options.listen.host || undefined, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#accepting = true;
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
    return { host: address.address, port: address.port };
  }

  /** A new certificate for new handshakes; established sessions keep theirs. Throws on a bad pair. */
  setCertificate(pair: { readonly cert: Buffer; readonly key: Buffer }): void {
    if (!('setSecureContext' in this.#server)) throw new Error('listener has no TLS');
    (this.#server as import('node:https').Server).setSecureContext({ cert: pair.cert, key: pair.key });
  }

  /** Stops accepting new connections; established ones stay until drained. */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    // close() stops listening now; its callback would wait for every upgraded socket.
    this.#server.close();
  }

  /** Forcibly closes whatever is left (after the drain). */
  destroyAll(): void {
    this.#server.closeAllConnections();
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // From here the session's own handshake timer bounds the socket.
    const key = connectionKey(socket as Socket);
    clearTimeout(this.#deadlines.get(key));
    this.#deadlines.delete(key);
    this.#limiter.release(socket as Socket);
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== RELAY_PATH || !this.#accepting) {
      const status = this.#accepting ? '404 Not Found' : '503 Service Unavailable';
      refuseUpgrade(socket, status);
      return;
    }
    const remote = this.#options.clientAddress.resolve(req);
    if (this.#options.abuse !== undefined) {
      const admitted = this.#options.abuse.upgrade(this.#options.clientAddress.clientIp(req));
      if (typeof admitted === 'string') {
        this.#options.onAbuse?.(admitted);
        refuseUpgrade(socket, '429 Too Many Requests');
        return;
      }
      socket.once('close', admitted);
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      new PeerSession(ws, socket as Socket, remote, this.#options.session);
    });
  }
}
