import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { WsFrameReader, type WsFrameError } from '../../src/cluster/mesh-ws-frame-reader.js';
import {
  WS_MAX_HEADER_SIZE,
  WsOpcode,
  wsClosePayload,
  wsFrame,
  writeWsHeader,
} from '../../src/net/ws-frame.js';

type Seen = [kind: string, payload: string] | [kind: 'close', code: number | undefined, reason: string];

function reader(expectMasked = false, maxPayload = 1 << 20): { reader: WsFrameReader; seen: Seen[] } {
  const seen: Seen[] = [];
  const r = new WsFrameReader(
    {
      binary: (p) => seen.push(['binary', p.toString()]),
      ping: (p) => seen.push(['ping', p.toString()]),
      pong: (p) => seen.push(['pong', p.toString()]),
      close: (code, reason) => seen.push(['close', code, reason.toString()]),
    },
    { maxPayload, expectMasked },
  );
  return { reader: r, seen };
}

// ws exports its frame encoder at runtime; its type definitions do not declare it.
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
};

/** A frame as ws itself would write it (the encoder old pods use), masked with `mask` or not. */
function wsEncoded(opcode: number, payload: Buffer, mask?: Buffer, fin = true): Buffer {
  const parts = Sender.frame(payload, {
    fin,
    opcode,
    mask: mask !== undefined,
    maskBuffer: Buffer.alloc(4),
    generateMask: (key: Buffer) => mask?.copy(key),
    readOnly: false,
    rsv1: false,
  });
  return Buffer.concat(parts);
}

const binary = (text: string | Buffer): Buffer =>
  wsFrame(WsOpcode.Binary, Buffer.isBuffer(text) ? text : Buffer.from(text), false);

describe('mesh WebSocket frame reader', () => {
  it('reads several frames from one chunk, each as a view into it', () => {
    const { reader: r, seen } = reader();
    const views: Buffer[] = [];
    const viewing = new WsFrameReader(
      { binary: (p) => views.push(p), ping: () => {}, pong: () => {}, close: () => {} },
      { maxPayload: 1 << 20, expectMasked: false },
    );
    const chunk = Buffer.concat([
      binary('one'),
      wsFrame(WsOpcode.Ping, Buffer.from('p'), false),
      binary('two'),
    ]);
    expect(r.push(chunk)).toBeUndefined();
    expect(seen).toEqual([
      ['binary', 'one'],
      ['ping', 'p'],
      ['binary', 'two'],
    ]);
    viewing.push(chunk);
    expect(views.map((v) => v.buffer === chunk.buffer)).toEqual([true, true]);
  });

  it('reassembles frames split at every byte boundary, with 7-, 16- and 64-bit lengths', () => {
    const payloads = [Buffer.alloc(5, 'a'), Buffer.alloc(300, 'b'), Buffer.alloc(70_000, 'c')];
    const stream = Buffer.concat(payloads.map((p) => binary(p)));
    for (const step of [1, 2, 3, 7, 13, 4096, 65_536]) {
      const { reader: r, seen } = reader();
      for (let offset = 0; offset < stream.length; offset += step)
        expect(r.push(stream.subarray(offset, offset + step))).toBeUndefined();
      expect(seen.map(([, p]) => p)).toEqual(payloads.map((p) => p.toString()));
    }
  });

  it('assembles a frame that spans reads in the memory its handler gives, and says so', () => {
    const lent: Buffer[] = [];
    const got: [string, boolean, boolean][] = [];
    const r = new WsFrameReader(
      {
        binary: (p, assembled) =>
          got.push([p.toString(), assembled, lent.some((l) => l.buffer === p.buffer)]),
        assemblyBuffer: (length) => {
          const memory = Buffer.alloc(length + 16).subarray(0, length);
          lent.push(memory);
          return memory;
        },
        ping: () => {},
        pong: () => {},
        close: () => {},
      },
      { maxPayload: 1 << 20, expectMasked: false },
    );
    const spanning = binary('x'.repeat(300));
    expect(r.push(Buffer.concat([binary('whole'), spanning.subarray(0, 100)]))).toBeUndefined();
    expect(r.push(spanning.subarray(100))).toBeUndefined();
    expect(got).toEqual([
      ['whole', false, false],
      ['x'.repeat(300), true, true],
    ]);
    expect(lent.map((l) => l.length)).toEqual([300]);
  });

  it('reads what ws writes, masked (from a client) with a random or zero key', () => {
    const payload = Buffer.alloc(1_000, 'm');
    for (const mask of [Buffer.from([1, 2, 3, 4]), Buffer.alloc(4)]) {
      const { reader: r, seen } = reader(true);
      const stream = Buffer.concat([
        wsEncoded(WsOpcode.Binary, Buffer.from(payload), mask),
        wsEncoded(WsOpcode.Ping, Buffer.from('hi'), mask),
      ]);
      // Split inside the first payload: the unmasking must continue across reads.
      expect(r.push(stream.subarray(0, 500))).toBeUndefined();
      expect(r.push(stream.subarray(500))).toBeUndefined();
      expect(seen).toEqual([
        ['binary', payload.toString()],
        ['ping', 'hi'],
      ]);
    }
  });

  it('writes headers that ws reads: unmasked from the server side, zero-masked from the client side', () => {
    for (const length of [0, 125, 126, 65_535, 65_536]) {
      for (const masked of [false, true]) {
        const buffer = Buffer.alloc(WS_MAX_HEADER_SIZE + length, 'z');
        const start = writeWsHeader(buffer, WS_MAX_HEADER_SIZE, WsOpcode.Binary, length, masked);
        const ours = buffer.subarray(start);
        const theirs = wsEncoded(
          WsOpcode.Binary,
          Buffer.alloc(length, 'z'),
          masked ? Buffer.alloc(4) : undefined,
        );
        expect(ours.equals(theirs)).toBe(true);
      }
    }
  });

  it('hands over close frames with their code, and reads nothing after one', () => {
    const { reader: r, seen } = reader();
    r.push(
      Buffer.concat([
        wsFrame(WsOpcode.Close, wsClosePayload(1001, 'going'), false),
        binary('after the close'),
      ]),
    );
    expect(seen).toEqual([['close', 1001, 'going']]);
    expect(r.stopped).toBe(true);
    const empty = reader();
    empty.reader.push(wsFrame(WsOpcode.Close, Buffer.alloc(0), false));
    expect(empty.seen).toEqual([['close', undefined, '']]);
  });

  it('names every kind of bad input and hands over nothing after it', () => {
    const good = binary('fine');
    const cases: [Buffer, WsFrameError, boolean?][] = [
      [wsFrame(WsOpcode.Text, Buffer.from('text'), false), 'text_frame'],
      [wsEncoded(WsOpcode.Binary, Buffer.from('first part'), undefined, false), 'fragmented_frame'],
      [wsFrame(WsOpcode.Continuation, Buffer.from('more'), false), 'fragmented_frame'],
      // Reserved bits set (a compressed frame: no extension was negotiated).
      [Buffer.from([0xc2, 0x01, 0x41]), 'bad_frame'],
      // Reserved opcodes.
      [Buffer.from([0x83, 0x00]), 'bad_frame'],
      [Buffer.from([0x8b, 0x00]), 'bad_frame'],
      // A control frame that is fragmented, or longer than 125 bytes.
      [Buffer.from([0x09, 0x00]), 'bad_frame'],
      [Buffer.concat([Buffer.from([0x89, 126, 0, 126]), Buffer.alloc(126)]), 'bad_frame'],
      // A close frame with a 1-byte payload.
      [Buffer.from([0x88, 0x01, 0x03]), 'bad_frame'],
      // A masked frame from the accepting side (a server must not mask).
      [wsEncoded(WsOpcode.Binary, Buffer.from('x'), Buffer.from([9, 9, 9, 9])), 'bad_frame'],
      // A 64-bit length with its top bit set, one beyond 32 bits, and one beyond maxPayload.
      [Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), 'bad_frame'],
      [Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), 'oversized_frame'],
      [Buffer.from([0x82, 126, 0x04, 0x01]), 'oversized_frame'],
    ];
    for (const [bad, problem] of cases) {
      const { reader: r, seen } = reader(false, 1_024);
      expect(r.push(Buffer.concat([good, bad, good]))).toBe(problem);
      expect(seen).toEqual([['binary', 'fine']]);
      expect(r.push(good)).toBeUndefined();
      expect(seen).toHaveLength(1);
    }
    // The dialling side's frames must be masked.
    const server = reader(true);
    expect(server.reader.push(good)).toBe('bad_frame');
    expect(server.seen).toEqual([]);
  });
});
