import { describe, expect, it } from 'vitest';
import { LastPeerKey } from '../../src/protocol/last-peer-key.js';
import { peerIdFromIdentifier, peerKeyFromBytes } from '../../src/protocol/peer-id.js';

describe('LastPeerKey', () => {
  it('gives the key of the ID at the offset, whether it repeats or changes', () => {
    const a = peerIdFromIdentifier('peer-a');
    const b = peerIdFromIdentifier('peer-b');
    const buf = Buffer.concat([Buffer.from([9, 9]), a, b, a]);
    const last = new LastPeerKey();
    expect(last.read(buf, 2)).toBe(peerKeyFromBytes(a));
    expect(last.read(buf, 2 + 36 * 2)).toBe(peerKeyFromBytes(a));
    expect(last.read(buf, 2 + 36)).toBe(peerKeyFromBytes(b));
    // The remembered bytes are a copy: reusing the buffer does not change the answer for new bytes.
    b.copy(buf, 2);
    expect(last.read(buf, 2)).toBe(peerKeyFromBytes(b));
    a.copy(buf, 2);
    expect(last.read(buf, 2)).toBe(peerKeyFromBytes(a));
  });

  it('with many slots, keeps interleaved IDs apart, including two that share a slot', () => {
    const ids = Array.from({ length: 40 }, (_, i) => peerIdFromIdentifier(`peer-${i}`));
    // Two IDs whose last bytes are equal land in the same slot of any size.
    const twin = Buffer.from(ids[0]!);
    twin[10] = (twin[10]! + 1) & 0xff;
    ids.push(twin);
    const frame = Buffer.concat([...ids, ...ids, ...ids.slice().reverse()]);
    const cache = new LastPeerKey(16);
    for (let offset = 0; offset < frame.length; offset += 36) {
      expect(cache.read(frame, offset)).toBe(peerKeyFromBytes(frame.subarray(offset, offset + 36)));
    }
    expect(() => new LastPeerKey(3)).toThrow(RangeError);
  });
});
