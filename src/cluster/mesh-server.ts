import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { refuseUpgrade } from '../observability/upgrade-refusal.js';
import type { MeshSocket } from './mesh-socket.js';
import { acceptUpgrade, wsUpgradeKey } from './mesh-upgrade.js';
import type { HostPort } from '../net/host-port.js';
import type { ClusterMetrics } from './cluster-metrics.js';
import { MESH_HEADER, MESH_PATH, ReplayGuard, acceptProof, verifyDial } from './mesh-auth.js';

/** Time a connection gets to send its whole upgrade request. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Connections (open or in handshake) the listener holds; a pod has one link per other pod. */
const DEFAULT_MAX_CONNECTIONS = 1_024;
/** Connections not yet authenticated: a dial flood cannot hold more. */
const DEFAULT_MAX_PENDING = 64;

const STATUS_LINES = { 400: '400 Bad Request', 401: '401 Unauthorized', 404: '404 Not Found' } as const;

/**
 * The mesh listener: accepts WebSocket links from other instances that prove
 * the cluster secret, refuses (401, logged, counted) everything else. The
 * upgrade is answered here and the socket framed by MeshSocket, not by a
 * WebSocket library.
 */
export class MeshServer {
  readonly #server: Server;
  readonly #maxPayload: number;
  readonly #listen: HostPort;
  readonly #secret: string;
  readonly #instanceId: string;
  readonly #metrics: ClusterMetrics;
  readonly #logger: Logger;
  readonly #replay = new ReplayGuard();
  readonly #sockets = new Set<Socket>();
  readonly #deadlines = new WeakMap<Socket, NodeJS.Timeout>();
  #pending = 0;
  readonly #settlers = new WeakMap<Socket, () => void>();

  constructor(options: {
    listen: HostPort;
    secret: string;
    instanceId: string;
    maxPayload: number;
    handshakeTimeoutMs?: number;
    maxConnections?: number;
    maxPendingConnections?: number;
    metrics: ClusterMetrics;
    logger: Logger;
    accept: (socket: MeshSocket, instance: string) => void;
  }) {
    this.#listen = options.listen;
    this.#secret = options.secret;
    this.#instanceId = options.instanceId;
    this.#metrics = options.metrics;
    // The logger rate-limits repeated warnings (observability/logger), so a dial loop cannot flood it.
    this.#logger = options.logger;
    this.#maxPayload = options.maxPayload;
    const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#server = createServer((_request, response) => {
      this.#metrics.authFailures.inc({ reason: 'bad_request' });
      response.writeHead(404, { connection: 'close' }).end();
    });
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const maxPending = options.maxPendingConnections ?? DEFAULT_MAX_PENDING;
    this.#server.on('connection', (socket: Socket) => {
      if (this.#sockets.size >= maxConnections || this.#pending >= maxPending) {
        this.#metrics.authFailures.inc({ reason: 'connection_limit' });
        this.#logger.warn(
          { reason: 'connection_limit', remote_address: socket.remoteAddress },
          'refused mesh connection',
        );
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      this.#pending++;
      let pending = true;
      const settle = (): void => {
        if (pending) this.#pending--;
        pending = false;
      };
      // Until it is upgraded, a connection has this long; a silent or slow one is dropped.
      const deadline = setTimeout(() => {
        this.#metrics.authFailures.inc({ reason: 'handshake_timeout' });
        socket.destroy();
      }, handshakeTimeoutMs);
      deadline.unref();
      this.#deadlines.set(socket, deadline);
      this.#settlers.set(socket, settle);
      socket.once('close', () => {
        settle();
        clearTimeout(deadline);
        this.#sockets.delete(socket);
      });
    });
    this.#server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      clearTimeout(this.#deadlines.get(request.socket));
      const path = (request.url ?? '').split('?')[0];
      if (path !== MESH_PATH) return this.#refuse(request, socket, 'bad_request', 404);
      const key = wsUpgradeKey(request.headers);
      if (key === undefined) return this.#refuse(request, socket, 'bad_request', 400);
      const verdict = verifyDial(this.#secret, this.#instanceId, request.headers, this.#replay);
      if (!verdict.ok) return this.#refuse(request, socket, verdict.reason, 401);
      this.#settlers.get(request.socket)?.();
      const proof = { [MESH_HEADER.proof]: acceptProof(this.#secret, verdict.request) };
      options.accept(acceptUpgrade(socket, head, key, proof, this.#maxPayload), verdict.request.from);
    });
  }

  /** Starts listening; resolves with the bound port (useful when the configured port is 0). */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#listen.port, this.#listen.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #refuse(request: IncomingMessage, socket: Duplex, reason: string, status: 400 | 401 | 404): void {
    this.#metrics.authFailures.inc({ reason });
    this.#logger.warn(
      {
        reason,
        remote_address: request.socket.remoteAddress,
        claimed_instance: request.headers[MESH_HEADER.from],
      },
      'refused mesh connection',
    );
    refuseUpgrade(socket, STATUS_LINES[status]);
  }
}
