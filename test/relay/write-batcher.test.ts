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

/**
 * A real loopback connection; resolves with our end and the bytes the other
 * end receives (`reading: false`: the other end never reads, so our sends pile up).
 */
async function connectedPair({ reading = true } = {}): Promise<{ socket: Socket; received: Buffer[] }> {
  const received: Buffer[] = [];
  server = createServer((peer) => {
    sockets.push(peer);
    if (reading) peer.on('data', (d: Buffer) => received.push(d));
    else peer.pause();
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

  it('says after the flush whether every socket written this turn took all it was given', async () => {
    const { socket } = await connectedPair();
    const batcher = new WriteBatcher();
    const verdicts: boolean[] = [];
    batcher.cork(socket);
    socket.write(Buffer.alloc(1400));
    batcher.whenWritten((allWritten) => verdicts.push(allWritten));
    expect(verdicts).toEqual([]);
    await immediate();
    expect(verdicts).toEqual([true]);

    // A receiver that does not read: once the kernel's buffers are full, bytes stay in the socket.
    const stalled = (await connectedPair({ reading: false })).socket;
    const chunk = Buffer.alloc(MAX_BATCH_BYTES);
    let turns = 0;
    while (verdicts.length === 1 || verdicts[verdicts.length - 1] === true) {
      if (++turns > 1_000) throw new Error('the kernel never stopped taking bytes');
      batcher.cork(socket);
      socket.write('x');
      batcher.cork(stalled);
      stalled.write(chunk);
      batcher.whenWritten((allWritten) => verdicts.push(allWritten));
      await immediate();
    }
    expect(stalled.writableLength).toBeGreaterThan(0);
    expect(verdicts.at(-1)).toBe(false);
  });

  it('calls back after the flush even when nothing was written this turn', async () => {
    const batcher = new WriteBatcher();
    const verdicts: boolean[] = [];
    batcher.whenWritten((allWritten) => verdicts.push(allWritten));
    await immediate();
    expect(verdicts).toEqual([true]);
  });
});
