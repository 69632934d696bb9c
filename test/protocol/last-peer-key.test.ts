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
});
