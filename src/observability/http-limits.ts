import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What one HTTP listener allows a client that may never read or finish a request. */
export interface HttpLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Requests on one connection before it is closed (0: no limit). */
  readonly maxRequestsPerSocket: number;
  /** Pipelined requests whose response is not yet written out; one more closes the connection. */
  readonly maxInFlightPerSocket: number;
  /** Response bytes a connection may leave unread before it is closed. */
  readonly maxUnreadResponseBytes: number;
  /** Connections tracked by this listener; a new one beyond it evicts the oldest idle one. */
  readonly maxConnections: number;
}

/** Node checks header and request timeouts on this interval; its 30 s default overshoots them. */
export const TIMEOUT_CHECK_INTERVAL_MS = 500;

export type HttpRefusal = 'connection_cap' | 'pipelining' | 'unread_responses';

interface Tracked {
  inFlight: number;
}

/**
 * Bounds a node:http server: timeouts, a per-connection in-flight cap (a
 * client pipelining without reading would otherwise queue responses in memory)
 * and a connection cap that closes idle connections before refusing a new one,
 * so a flood of idle sockets cannot starve a probe.
 */
export class HttpConnectionLimiter {
  readonly #limits: HttpLimits;
  readonly #onRefused: (reason: HttpRefusal) => void;
  // Insertion order is age: the first idle entry is the oldest idle connection.
  readonly #connections = new Map<Socket, Tracked>();

  constructor(server: Server, limits: HttpLimits, onRefused: (reason: HttpRefusal) => void) {
    this.#limits = limits;
    this.#onRefused = onRefused;
    server.headersTimeout = limits.headersTimeoutMs;
    server.requestTimeout = limits.requestTimeoutMs;
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
    // A TLS server hands over the decrypted socket, which is the one requests arrive on.
    const event = 'setSecureContext' in server ? 'secureConnection' : 'connection';
    server.on(event, (socket: Socket) => this.#onConnection(socket));
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) =>
      this.#onRequest(req, res),
    );
  }

  get size(): number {
    return this.#connections.size;
  }

  /** Stops tracking a socket handed elsewhere (a WebSocket upgrade). */
  release(socket: Socket): void {
    this.#connections.delete(socket);
  }

  #onConnection(socket: Socket): void {
    if (this.#connections.size >= this.#limits.maxConnections && !this.#evictIdle()) {
      this.#onRefused('connection_cap');
      socket.destroy();
      return;
    }
    this.#connections.set(socket, { inFlight: 0 });
    socket.once('close', () => this.#connections.delete(socket));
  }

  #evictIdle(): boolean {
    for (const [socket, tracked] of this.#connections) {
      if (tracked.inFlight > 0) continue;
      this.#connections.delete(socket);
      this.#onRefused('connection_cap');
      socket.destroy();
      return true;
    }
    return false;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const tracked = this.#connections.get(socket);
    if (tracked === undefined) return;
    tracked.inFlight++;
    res.once('close', () => tracked.inFlight--);
    if (tracked.inFlight > this.#limits.maxInFlightPerSocket) return this.#refuse(socket, 'pipelining');
    if (socket.writableLength > this.#limits.maxUnreadResponseBytes)
      return this.#refuse(socket, 'unread_responses');
  }

  #refuse(socket: Socket, reason: HttpRefusal): void {
    this.#connections.delete(socket);
    this.#onRefused(reason);
    socket.destroy();
  }
}
