import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as wsModule from 'ws';
import { FRAME_HEADER_ROOM, writeBinaryFrame } from '../../src/relay/binary-frame.js';

/** Captures what writeBinaryFrame puts on a socket. */
function capture(): { socket: Socket; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const socket = { write: (chunk: Buffer) => chunks.push(Buffer.from(chunk)) } as unknown as Socket;
  return { socket, bytes: () => Buffer.concat(chunks) };
}

// ws's frame encoder (untyped in @types/ws): the reference for the bytes we write ourselves.
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
};

/** ws's own server-to-client frame for `data`. */
function wsFrame(data: Buffer): Buffer {
  const list = Sender.frame(data, { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false });
  return Buffer.concat(list);
}

function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7) & 0xff;
  return b;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('writeBinaryFrame', () => {
  it('writes the bytes ws writes, for each length encoding', () => {
    for (const n of [0, 38, 125, 126, 1440, 65_535, 65_536, 70_000]) {
      const out = capture();
      writeBinaryFrame(out.socket, payload(n), false);
      expect(out.bytes()).toEqual(wsFrame(payload(n)));
    }
  });

  it('with header room, writes the header in place in front of the message, as one chunk', () => {
    for (const n of [38, 125, 1440, 8820]) {
      const backing = Buffer.alloc(FRAME_HEADER_ROOM + n + 3, 0xee);
      const message = backing.subarray(FRAME_HEADER_ROOM, FRAME_HEADER_ROOM + n);
      payload(n).copy(message);
      const writes: Buffer[] = [];
      const socket = { write: (c: Buffer) => writes.push(c) } as unknown as Socket;
      writeBinaryFrame(socket, message, true);
      expect(writes).toHaveLength(1);
      expect(Buffer.from(writes[0]!)).toEqual(wsFrame(payload(n)));
      // Nothing after the message is touched.
      expect(backing.subarray(FRAME_HEADER_ROOM + n)).toEqual(Buffer.alloc(3, 0xee));
    }
  });

  it('is read by a real ws client as the messages written', async () => {
    const sizes = [40, 1440, 8820];
    server = createServer((socket) => {
      socket.once('data', (request: Buffer) => {
        const key = /sec-websocket-key: (\S+)/i.exec(request.toString())![1]!;
        const accept = createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        socket.cork();
        for (const n of sizes) {
          const backing = Buffer.alloc(FRAME_HEADER_ROOM + n);
          payload(n).copy(backing, FRAME_HEADER_ROOM);
          writeBinaryFrame(socket, backing.subarray(FRAME_HEADER_ROOM), n !== 1440);
        }
        socket.uncork();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    const received: Buffer[] = [];
    client.on('message', (data: Buffer, isBinary: boolean) => {
      expect(isBinary).toBe(true);
      received.push(data);
    });
    await expect.poll(() => received.length).toBe(sizes.length);
    expect(received).toEqual(sizes.map(payload));
    client.terminate();
  });
});
