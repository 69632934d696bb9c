import { describe, expect, it } from 'vitest';
import { decodeProbePacket, encodeProbePacket } from '../../src/probe/probe-packet.js';

describe('probe packets', () => {
  it('round-trip ping and pong with their sequence number', () => {
    for (const packet of [
      { kind: 'ping', seq: 0 },
      { kind: 'pong', seq: 1 },
      { kind: 'ping', seq: 0xffff_ffff },
    ] as const) {
      expect(decodeProbePacket(encodeProbePacket(packet))).toEqual(packet);
    }
  });

  it('are 9 bytes: "nbpr", the kind, the sequence number big-endian', () => {
    expect(encodeProbePacket({ kind: 'pong', seq: 0x01020304 }).toString('hex')).toBe(
      '6e62707201' + '01020304',
    );
  });

  it('wrap a sequence number past 32 bits instead of failing', () => {
    expect(decodeProbePacket(encodeProbePacket({ kind: 'ping', seq: 2 ** 32 + 5 }))).toEqual({
      kind: 'ping',
      seq: 5,
    });
  });

  it('leave other traffic alone: another size, magic or kind is not a probe packet', () => {
    const good = encodeProbePacket({ kind: 'ping', seq: 7 });
    expect(decodeProbePacket(good.subarray(0, 8))).toBeUndefined();
    expect(decodeProbePacket(Buffer.concat([good, Buffer.from([0])]))).toBeUndefined();
    expect(decodeProbePacket(Buffer.from('NBPR\u0000\u0000\u0000\u0000\u0007'))).toBeUndefined();
    const badKind = Buffer.from(good);
    badKind[4] = 2;
    expect(decodeProbePacket(badKind)).toBeUndefined();
    expect(decodeProbePacket(Buffer.alloc(0))).toBeUndefined();
  });
});
