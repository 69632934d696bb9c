import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeAuthResponse } from '../../../src/protocol/codec.js';
import { MessageType } from '../../../src/protocol/constants.js';

/** What the fake server does with one client: given the socket and the client's first message. */
export type FakeRelayBehaviour = (socket: WebSocket, firstMessage: Buffer) => void;

/** Answers auth like a real relay and nothing else. */
export const authOnly =
  (instanceUrl = 'rel://fake.test:443'): FakeRelayBehaviour =>
  (socket) =>
    socket.send(encodeAuthResponse(instanceUrl));

/**
 * Answers auth like a real relay, then stays quiet (no health checks) except
 * that every subscribed peer is reported online at once.
 */
export const acceptAuth =
  (instanceUrl = 'rel://fake.test:443'): FakeRelayBehaviour =>
  (socket) => {
    socket.send(encodeAuthResponse(instanceUrl));
    socket.on('message', (data: Buffer) => {
      if (data[1] === MessageType.SubscribePeerState)
        socket.send(Buffer.from([1, MessageType.PeersOnline, ...data.subarray(2)]));
    });
  };

/**
 * A tiny WebSocket server on /relay whose behaviour a test scripts: garbage,
 * oversize or out-of-order messages, or silence. It can be stopped and
 * started again on the same port to act as a relay that goes away.
 */
export class FakeRelayServer {
  behaviour: FakeRelayBehaviour;
  /** Messages received after the first one, per connection in arrival order. */
  readonly received: Buffer[] = [];
  readonly sockets = new Set<WebSocket>();
  connections = 0;
  #server: WebSocketServer | undefined;
  #port = 0;
  #onReceived: (() => void)[] = [];

  private constructor(behaviour: FakeRelayBehaviour) {
    this.behaviour = behaviour;
  }

  static async start(behaviour: FakeRelayBehaviour, port = 0): Promise<FakeRelayServer> {
    const server = new FakeRelayServer(behaviour);
    await server.listen(port);
    return server;
  }

  get url(): string {
    return `rel://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  async listen(port = this.#port): Promise<void> {
    const server = new WebSocketServer({ host: '127.0.0.1', port, path: '/relay' });
    await once(server, 'listening');
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    server.on('connection', (socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      let first = true;
      socket.on('message', (data: Buffer) => {
        if (first) {
          first = false;
          this.behaviour(socket, data);
        } else {
          this.received.push(data);
          for (const wake of this.#onReceived.splice(0)) wake();
        }
      });
    });
  }

  /** Resolves once `count` messages (after the first of each connection) have arrived in total. */
  async waitForReceived(count: number, timeoutMs = 5_000): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake relay got ${this.received.length} of ${count} messages`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#onReceived.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received;
  }

  /** Drops every client without a close frame. */
  dropClients(): void {
    for (const socket of this.sockets) socket.terminate();
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    this.dropClients();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
