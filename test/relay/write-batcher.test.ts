import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_BYTES, WriteBatcher } from '../../src/relay/write-batcher.js';

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A real loopback connection; resolves with our end and the bytes the other end receives. */
async function connectedPair(): Promise<{ socket: Socket; received: Buffer[] }> {
  const received: Buffer[] = [];
  server = createServer((peer) => {
    sockets.push(peer);
    peer.on('data', (d: Buffer) => received.push(d));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const socket = createConnection(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, received };
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));
const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WriteBatcher', () => {
  it('holds the writes of a whole event-loop turn, across ticks, until its check phase', async () => {
    const { socket, received } = await connectedPair();
    const batcher = new WriteBatcher();
    batcher.cork(socket);
    socket.write('one,');
    // What reads of a later chunk in the same poll phase write joins the batch.
    await nextTick();
    socket.write('two');
    await nextTick();
    expect(socket.writableCorked).toBe(1);
    expect(socket.writableLength).toBe(7);
    await immediate();
    expect(socket.writableCorked).toBe(0);
    await expect.poll(() => Buffer.concat(received).toString()).toBe('one,two');
  });

  it('writes a full batch at once instead of letting it grow toward the send queue limit', async () => {
    const { socket } = await connectedPair();
    const batcher = new WriteBatcher();
    batcher.cork(socket);
    socket.write(Buffer.alloc(MAX_BATCH_BYTES - 1));
    batcher.wrote(socket);
    expect(socket.writableCorked).toBe(1);
    socket.write(Buffer.alloc(1));
    batcher.wrote(socket);
    expect(socket.writableCorked).toBe(0);
    // The next write corks again; the pending flush uncorks each socket once.
    batcher.cork(socket);
    socket.write('x');
    await immediate();
    expect(socket.writableCorked).toBe(0);
  });
});
