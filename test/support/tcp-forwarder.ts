import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './free-port.js';

/**
 * A TCP forwarder on a stable loopback port: stands in for a Kubernetes
 * Service (retarget it at another pod) or for a network path a test can cut
 * or slow down (the chaos driver's partitions and Redis latency).
 */
export class TcpForwarder {
  targetPort: number;
  readonly port: number;
  /** Every chunk is held this long, in both directions, order kept. */
  latencyMs = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #open = true;

  private constructor(server: Server, port: number, targetPort: number) {
    this.#server = server;
    this.port = port;
    this.targetPort = targetPort;
  }

  static async start(targetPort: number, port?: number): Promise<TcpForwarder> {
    const server = createServer();
    const forwarder = new TcpForwarder(server, port ?? (await freePort()), targetPort);
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
    this.#pipe(inbound, outbound);
    this.#pipe(outbound, inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  }

  /** Forwards chunks, each held latencyMs; a per-direction queue keeps bytes in order when latency changes. */
  #pipe(from: Socket, to: Socket): void {
    const queue: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = (): void => {
      timer = undefined;
      while (queue.length > 0 && (queue[0]?.at ?? 0) <= Date.now()) {
        const head = queue.shift();
        if (head && !to.destroyed) to.write(head.chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, Math.max(0, (queue[0]?.at ?? 0) - Date.now()));
    };
    from.on('data', (chunk: Buffer) => {
      if (this.latencyMs <= 0 && queue.length === 0) {
        // No delay: keep the sender in step with the receiver, as pipe() would.
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
        return;
      }
      const last = queue.at(-1)?.at ?? 0;
      queue.push({ at: Math.max(Date.now() + this.latencyMs, last), chunk });
      timer ??= setTimeout(drain, Math.max(0, (queue[0]?.at ?? 0) - Date.now()));
    });
    from.once('close', () => clearTimeout(timer));
  }
}
