import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './free-port.js';

/**
 * A TCP forwarder on a stable loopback port: stands in for a Kubernetes
 * Service (retarget it at another pod) or for a network path a test can cut.
 */
export class TcpForwarder {
  targetPort: number;
  readonly port: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #open = true;

  private constructor(server: Server, port: number, targetPort: number) {
    this.#server = server;
    this.port = port;
    this.targetPort = targetPort;
  }

  static async start(targetPort: number): Promise<TcpForwarder> {
    const server = createServer();
    const forwarder = new TcpForwarder(server, await freePort(), targetPort);
    server.on('connection', (inbound) => forwarder.#forward(inbound));
    await new Promise<void>((resolve) => server.listen(forwarder.port, '127.0.0.1', resolve));
    return forwarder;
  }

  get url(): string {
    return `rel://127.0.0.1:${this.port}`;
  }

  /** Drops every connection and refuses new ones until restore(). */
  cut(): void {
    this.#open = false;
    for (const socket of this.#sockets) socket.destroy();
  }

  restore(): void {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(inbound: Socket): void {
    if (!this.#open) {
      inbound.destroy();
      return;
    }
    const outbound = createConnection({ host: '127.0.0.1', port: this.targetPort });
    for (const socket of [inbound, outbound]) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  }
}
