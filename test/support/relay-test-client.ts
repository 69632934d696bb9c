import { WebSocket } from 'ws';
import { generateToken } from '../../src/auth/hmac-token.js';
import { encodeAuth, encodePeerLists, encodeTransport, parseAuthResponse } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/constants.js';
import { peerIdFromIdentifier, peerKeyFromBytes, type PeerKey } from '../../src/protocol/peer-id.js';

export interface ClientOptions {
  /** WireGuard-key-like identifier the peer ID is derived from. */
  identifier: string;
  secret: string;
  /** Answer the server's health checks (and hide them from the inbox). Default true. */
  answerHealthChecks?: boolean;
}

export interface CloseInfo {
  code: number;
}

/**
 * A deliberately small client that speaks the relay protocol over a real
 * WebSocket, for tests: every received message lands in an inbox the test
 * awaits in order.
 */
export class RelayTestClient {
  readonly ws: WebSocket;
  readonly closed: Promise<CloseInfo>;
  peerId: Buffer = Buffer.alloc(0);
  instanceUrl = '';
  readonly #inbox: Buffer[] = [];
  readonly #waiters: { resolve: (m: Buffer) => void; reject: (e: Error) => void }[] = [];
  #closeInfo: CloseInfo | undefined;
  readonly #answerHealthChecks: boolean;

  private constructor(ws: WebSocket, answerHealthChecks: boolean) {
    this.ws = ws;
    this.#answerHealthChecks = answerHealthChecks;
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) data = Buffer.from(data);
      if (this.#answerHealthChecks && data.length === 2 && data[1] === MessageType.HealthCheck) {
        ws.send(Buffer.from([1, MessageType.HealthCheck]));
        return;
      }
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve(data);
      else this.#inbox.push(data);
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        this.#closeInfo = { code };
        for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`connection closed (${code})`));
        resolve({ code });
      });
    });
    ws.on('error', () => {});
  }

  /** Opens the WebSocket without authenticating. */
  static async open(url: string, answerHealthChecks = true): Promise<RelayTestClient> {
    const ws = new WebSocket(
      url.replace(/^rel:/, 'ws:').replace(/^rels:/, 'wss:') + (url.endsWith('/relay') ? '' : '/relay'),
      {
        perMessageDeflate: false,
        rejectUnauthorized: false,
      },
    );
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new RelayTestClient(ws, answerHealthChecks);
  }

  /** Opens and authenticates; fails unless the first message is the auth response. */
  static async connect(url: string, options: ClientOptions): Promise<RelayTestClient> {
    const client = await RelayTestClient.open(url, options.answerHealthChecks ?? true);
    client.peerId = peerIdFromIdentifier(options.identifier);
    client.send(encodeAuth(client.peerId, generateToken(options.secret, 3600)));
    const first = await client.next();
    const response = parseAuthResponse(first);
    if (!response.ok) throw new Error(`first message was not an auth response: ${first.toString('hex')}`);
    client.instanceUrl = response.value;
    return client;
  }

  get peerKey(): PeerKey {
    return peerKeyFromBytes(this.peerId);
  }

  get isClosed(): boolean {
    return this.#closeInfo !== undefined;
  }

  send(message: Buffer): void {
    this.ws.send(message, { binary: true });
  }

  sendTransport(destination: Buffer, payload: Buffer): void {
    this.send(encodeTransport(destination, payload));
  }

  subscribe(peerIds: Buffer[]): void {
    for (const m of encodePeerLists(MessageType.SubscribePeerState, peerIds.map(peerKeyFromBytes)))
      this.send(m);
  }

  unsubscribe(peerIds: Buffer[]): void {
    for (const m of encodePeerLists(MessageType.UnsubscribePeerState, peerIds.map(peerKeyFromBytes)))
      this.send(m);
  }

  /** The next message received, in order. */
  next(timeoutMs = 5_000): Promise<Buffer> {
    const queued = this.#inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closeInfo) return Promise.reject(new Error(`connection closed (${this.#closeInfo.code})`));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (m: Buffer) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Messages already received and not yet taken. */
  pending(): number {
    return this.#inbox.length;
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Builds a peer-state message body check: type and the IDs it lists. */
export function describeMessage(message: Buffer): { type: number; peers: string[] } {
  const peers: string[] = [];
  if (message[1] === MessageType.PeersOnline || message[1] === MessageType.PeersWentOffline) {
    for (let o = 2; o + 36 <= message.length; o += 36)
      peers.push(message.subarray(o, o + 36).toString('latin1'));
  }
  return { type: message[1] as number, peers };
}
