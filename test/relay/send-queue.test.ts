import { describe, expect, it } from 'vitest';
import { SendQueue, type DropReason } from '../../src/relay/send-queue.js';

function harness(
  limits = { maxDataBytes: 100, maxDataMessages: 3, maxControlBytes: 50, socketHighWaterMark: 10 },
) {
  const socket = { writableLength: 0 };
  const written: string[] = [];
  const dropped: [DropReason, string][] = [];
  let overflows = 0;
  const queue = new SendQueue(
    socket,
    {
      write: (m) => {
        written.push(m.toString());
        socket.writableLength += m.length;
      },
      onDrop: (reason, m) => dropped.push([reason, m.toString()]),
      onControlOverflow: () => overflows++,
    },
    limits,
  );
  return { socket, written, dropped, queue, overflows: () => overflows };
}

describe('SendQueue', () => {
  it('writes nothing before open, then the first message before anything queued', () => {
    const h = harness();
    h.queue.pushData(Buffer.from('d1'));
    h.queue.pushControl(Buffer.from('c1'));
    expect(h.written).toEqual([]);
    h.queue.open(Buffer.from('auth'));
    expect(h.written[0]).toBe('auth');
  });

  it('copies a queued view of a larger buffer, and writes it at once as it is', () => {
    const frame = Buffer.alloc(8);
    frame.write('xxAAyyBB');
    const seen: Buffer[] = [];
    const socket = { writableLength: 0 };
    const queue = new SendQueue(
      socket,
      { write: (m) => seen.push(m), onDrop: () => {}, onControlOverflow: () => {} },
      { maxDataBytes: 100, maxDataMessages: 3, maxControlBytes: 50, socketHighWaterMark: 10 },
    );
    queue.open();
    queue.pushData(frame.subarray(2, 4), { pinsLargerBuffer: true });
    socket.writableLength = 10; // socket full: the next one waits
    queue.pushData(frame.subarray(6, 8), { pinsLargerBuffer: true });
    frame.fill('z'); // the frame's memory is reused
    socket.writableLength = 0;
    queue.flush();
    expect(seen.map((m) => m.buffer === frame.buffer)).toEqual([true, false]);
    expect(seen.map((m) => m.toString())).toEqual(['zz', 'BB']);
  });

  it('sends control before data once the socket drains', () => {
    const h = harness();
    h.queue.open();
    h.socket.writableLength = 10; // socket full
    h.queue.pushData(Buffer.from('d1'));
    h.queue.pushControl(Buffer.from('c1'));
    h.queue.pushData(Buffer.from('d2'));
    expect(h.written).toEqual([]);
    h.socket.writableLength = 0;
    h.queue.flush();
    expect(h.written).toEqual(['c1', 'd1', 'd2']);
  });

  it('drops the oldest data when the count limit is reached, never control', () => {
    const h = harness();
    h.queue.open();
    h.socket.writableLength = 10;
    for (const m of ['d1', 'd2', 'd3', 'd4', 'd5']) h.queue.pushData(Buffer.from(m));
    h.queue.pushControl(Buffer.from('c1'));
    expect(h.dropped).toEqual([
      ['queue_full', 'd1'],
      ['queue_full', 'd2'],
    ]);
    expect(h.queue.queuedDataMessages).toBe(3);
    h.socket.writableLength = 0;
    // Flush writes until the socket reports its high-water mark again.
    h.queue.flush();
    expect(h.written).toEqual(['c1', 'd3', 'd4', 'd5']);
  });

  it('drops the oldest data when the byte limit is reached', () => {
    const h = harness({
      maxDataBytes: 10,
      maxDataMessages: 100,
      maxControlBytes: 50,
      socketHighWaterMark: 1,
    });
    h.queue.open();
    h.socket.writableLength = 1;
    h.queue.pushData(Buffer.alloc(6, 'a'));
    h.queue.pushData(Buffer.alloc(6, 'b'));
    expect(h.dropped.map(([r, m]) => [r, m[0]])).toEqual([['queue_full', 'a']]);
    expect(h.queue.queuedDataBytes).toBe(6);
  });

  it('reports control overflow instead of dropping control', () => {
    const h = harness();
    h.queue.open();
    h.socket.writableLength = 10;
    // 50 bytes fit; pushes 26 to 30 each take the queue past the limit and each is reported.
    for (let i = 0; i < 30; i++) h.queue.pushControl(Buffer.from('cc'));
    expect(h.overflows()).toBe(5);
    expect(h.dropped).toEqual([]);
  });

  it('drops what is queued when closed, and everything after', () => {
    const h = harness();
    h.queue.open();
    h.socket.writableLength = 10;
    h.queue.pushData(Buffer.from('d1'));
    h.queue.close();
    h.queue.pushData(Buffer.from('d2'));
    expect(h.dropped).toEqual([
      ['session_closed', 'd1'],
      ['session_closed', 'd2'],
    ]);
  });
});

describe('SendQueue ring growth', () => {
  it('keeps order across growth and wrap-around, up to the message limit', () => {
    const h = harness({
      maxDataBytes: 1 << 20,
      maxDataMessages: 100,
      maxControlBytes: 50,
      socketHighWaterMark: 10,
    });
    const drain = (): void => {
      while (h.queue.queuedDataMessages > 0) {
        h.socket.writableLength = 0;
        h.queue.flush();
      }
    };
    h.queue.open();
    h.socket.writableLength = 10;
    for (let i = 0; i < 5; i++) h.queue.pushData(Buffer.from(`a${i}`));
    // One partial flush moves the ring's head off zero: from 2 bytes, four 2-byte messages reach the mark of 10.
    h.socket.writableLength = 2;
    h.queue.flush();
    expect(h.written).toEqual(['a0', 'a1', 'a2', 'a3']);
    h.socket.writableLength = 10;
    for (let i = 0; i < 120; i++) h.queue.pushData(Buffer.from(`b${i}`));
    expect(h.queue.queuedDataMessages).toBe(100);
    h.written.length = 0;
    drain();
    // 121 queued into 100 slots: the 21 oldest (a4, b0..b19) were dropped, the rest arrive in order.
    expect(h.dropped.map(([, m]) => m)).toEqual(['a4', ...Array.from({ length: 20 }, (_, i) => `b${i}`)]);
    expect(h.written).toEqual(Array.from({ length: 100 }, (_, i) => `b${i + 20}`));
  });
});
