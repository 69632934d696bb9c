import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP forwarder standing in for a Kubernetes Service: clients dial one
 * stable port, the test points it at whichever pod should answer next.
 */
export class TcpForwarder {
  targetPort: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.targetPort = targetPort;
  }

  static async start(targetPort: number): Promise<TcpForwarder> {
    const server = createServer();
    const forwarder = new TcpForwarder(server, targetPort);
    server.on('connection', (inbound) => forwarder.#forward(inbound));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return forwarder;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `rel://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(inbound: Socket): void {
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
