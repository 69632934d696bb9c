/**
 * Embedded STUN server (RFC 5389 Binding only), enabled by NB_ENABLE_STUN. Stateless: each
 * datagram is answered on its own, so memory does not grow with the number of clients.
 */
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket, SocketType } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { buildBindingSuccessResponse, parseBindingRequest } from './stun-message.js';
import type { StunMalformedReason } from './stun-message.js';

export interface StunServerOptions {
  /** IP literal to bind; an IPv6 literal gets a udp6 socket (dual-stack for "::"), anything else udp4. */
  host: string;
  /** One socket per port; 0 picks an ephemeral port (see addresses()). */
  ports: number[];
  /** Optional SOFTWARE attribute for responses. */
  software?: string;
  /** Called once per answered Binding Request (metrics); must be cheap. */
  onRequest?: () => void;
  /** Called once per ignored datagram (metrics); must be cheap, do not log per packet. */
  onMalformed?: (reason: StunMalformedReason) => void;
  /** Socket errors and exceptions from the callbacks above; the server keeps running. */
  onError?: (err: Error) => void;
}

export interface StunAddress {
  address: string;
  port: number;
}

export class StunServer {
  private readonly options: StunServerOptions;
  private sockets: Socket[] = [];
  private starting = false;

  constructor(options: StunServerOptions) {
    if (options.ports.length === 0) throw new RangeError('StunServer needs at least one port');
    for (const port of options.ports) {
      if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
        throw new RangeError(`invalid STUN port ${port}`);
      }
    }
    this.options = { ...options, ports: [...options.ports] };
  }

  /** Binds every port; if one fails, the ones already bound are closed again and the error is thrown. */
  async start(): Promise<void> {
    if (this.starting || this.sockets.length > 0) throw new Error('StunServer already started');
    this.starting = true;
    const type: SocketType = isIPv6(this.options.host) ? 'udp6' : 'udp4';
    const bound: Socket[] = [];
    try {
      for (const port of this.options.ports) {
        bound.push(await this.bindSocket(type, port));
      }
      this.sockets = bound;
    } catch (err) {
      await Promise.all(bound.map(closeSocket));
      throw err;
    } finally {
      this.starting = false;
    }
  }

  addresses(): StunAddress[] {
    return this.sockets.map((socket) => {
      const { address, port } = socket.address();
      return { address, port };
    });
  }

  /** Closes all sockets; safe to call more than once. */
  async stop(): Promise<void> {
    const sockets = this.sockets;
    this.sockets = [];
    await Promise.all(sockets.map(closeSocket));
  }

  private bindSocket(type: SocketType, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type });
      const onBindError = (err: Error): void => {
        void closeSocket(socket);
        reject(err);
      };
      socket.once('error', onBindError);
      socket.bind(port, this.options.host, () => {
        socket.off('error', onBindError);
        // A listener must stay attached: an unhandled 'error' event would crash the process.
        socket.on('error', (err) => this.reportError(err));
        socket.on('message', (datagram, remote) => this.handleDatagram(socket, datagram, remote));
        resolve(socket);
      });
    });
  }

  private handleDatagram(socket: Socket, datagram: Buffer, remote: RemoteInfo): void {
    const parsed = parseBindingRequest(datagram);
    if (!parsed.ok) {
      this.safely(() => this.options.onMalformed?.(parsed.reason));
      return;
    }
    this.safely(() => this.options.onRequest?.());
    this.safely(() => {
      const response = buildBindingSuccessResponse({
        transactionId: parsed.message.transactionId,
        address: remote.address,
        port: remote.port,
        software: this.options.software,
      });
      socket.send(response, remote.port, remote.address, (err) => {
        if (err) this.reportError(err);
      });
    });
  }

  /** Runs fn, routing anything it throws to onError so one bad packet or callback cannot stop the server. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.reportError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private reportError(err: Error): void {
    try {
      this.options.onError?.(err);
    } catch {
      // Nowhere left to report to; staying up matters more than this error.
    }
  }
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      // Already closed (e.g. after a failed bind).
      resolve();
    }
  });
}
