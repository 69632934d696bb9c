import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import { MAX_MESSAGE_SIZE } from '../protocol/constants.js';
import type { HostPort } from '../config/cluster-options.js';
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
}

/** The public WebSocket endpoint (ws or wss) at /relay. */
export class RelayListener {
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #options: RelayListenerOptions;
  #accepting = false;

  constructor(options: RelayListenerOptions) {
    this.#options = options;
    this.#server = options.tls
      ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key })
      : createHttpServer();
    // Slow or silent clients must not hold a socket before the WebSocket handshake either.
    this.#server.headersTimeout = options.session.timings.handshakeTimeoutMs;
    this.#server.requestTimeout = options.session.timings.handshakeTimeoutMs;
    this.#server.maxConnections = options.maxConnections;
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
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== RELAY_PATH || !this.#accepting) {
      const status = this.#accepting ? '404 Not Found' : '503 Service Unavailable';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const remote = this.#options.clientAddress.resolve(req);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      new PeerSession(ws, socket as Socket, remote, this.#options.session);
    });
  }
}
