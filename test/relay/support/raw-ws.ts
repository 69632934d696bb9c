import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';

/**
 * A WebSocket client on a bare TCP socket, for tests that must misbehave where
 * a real client library would not: never answer a close frame, send unmasked
 * or compressed frames. Incoming bytes are counted, not parsed.
 */
export class RawWebSocket {
  readonly socket: Socket;
  /** Resolves when the server has closed the TCP connection. */
  readonly gone: Promise<void>;
  received = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    this.gone = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static async open(port: number, path = '/relay'): Promise<RawWebSocket> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const raw = new RawWebSocket(socket);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    // The 101 response ends with an empty line.
    while (!raw.received.includes('\r\n\r\n')) await once(socket, 'data');
    if (!raw.received.toString('latin1').startsWith('HTTP/1.1 101')) throw new Error('upgrade refused');
    raw.received = raw.received.subarray(raw.received.indexOf('\r\n\r\n') + 4);
    return raw;
  }

  /** One binary frame; `mask: false` and `rsv1: true` break the protocol on purpose. */
  sendFrame(payload: Buffer, { mask = true, rsv1 = false, opcode = 2 } = {}): void {
    const first = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
    const len = payload.length;
    const lenBytes =
      len < 126
        ? Buffer.from([len | (mask ? 0x80 : 0)])
        : Buffer.from([126 | (mask ? 0x80 : 0), len >> 8, len & 0xff]);
    if (!mask) {
      this.socket.write(Buffer.concat([Buffer.from([first]), lenBytes, payload]));
      return;
    }
    const key = randomBytes(4);
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.length; i++) masked[i] = masked.readUInt8(i) ^ key.readUInt8(i % 4);
    this.socket.write(Buffer.concat([Buffer.from([first]), lenBytes, key, masked]));
  }

  /** Waits until at least `bytes` have arrived since the upgrade. */
  async waitReceived(bytes: number): Promise<void> {
    while (this.received.length < bytes) await once(this.socket, 'data');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
