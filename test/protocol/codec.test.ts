import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeAuth,
  encodeAuthResponse,
  encodePeerLists,
  encodeTransport,
  parseAuth,
  parseAuthResponse,
  parsePeerList,
  readMessageType,
  rewriteTransportPeer,
  transportPeerKey,
} from '../../src/protocol/codec.js';
import {
  MAX_MESSAGE_SIZE,
  MAX_PEER_IDS_PER_MESSAGE,
  MessageType,
  PEER_ID_SIZE,
  TRANSPORT_HEADER_SIZE,
  HEADER_SIZE,
} from '../../src/protocol/constants.js';
import {
  formatPeerKey,
  parsePrintedPeerId,
  peerIdFromIdentifier,
  peerKeyFromBytes,
  peerKeyToBytes,
  type PeerKey,
} from '../../src/protocol/peer-id.js';

const peerIdArb = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((hash) => Buffer.concat([Buffer.from('sha-'), hash]));

describe('peer IDs', () => {
  it('are "sha-" + SHA-256 of the identifier, printed as sha- + base64', () => {
    const id = peerIdFromIdentifier('key');
    expect(id.length).toBe(36);
    expect(id.subarray(0, 4).toString()).toBe('sha-');
    // SHA-256("key"), computed independently.
    expect(id.subarray(4).toString('hex')).toBe(
      '2c70e12b7a0646f92279f427c7b38e7334d8e5389cff167a1dc30e73f826b683',
    );
    expect(formatPeerKey(peerKeyFromBytes(id))).toBe('sha-LHDhK3oGRvkiefQnx7OOczTY5Tic/xZ6HcMOc/gmtoM=');
  });

  it('round-trip through key, bytes and printed form', () => {
    fc.assert(
      fc.property(peerIdArb, (id) => {
        const key = peerKeyFromBytes(id);
        expect(peerKeyToBytes(key)).toEqual(id);
        expect(parsePrintedPeerId(formatPeerKey(key))).toBe(key);
      }),
    );
  });
});

describe('auth', () => {
  it('round-trips peer ID and token', () => {
    fc.assert(
      fc.property(peerIdArb, fc.uint8Array({ minLength: 0, maxLength: 170 }), (id, token) => {
        const parsed = parseAuth(encodeAuth(id, Buffer.from(token)));
        expect(parsed.ok).toBe(true);
        if (parsed.ok) {
          expect(parsed.value.peerId).toEqual(id);
          expect(parsed.value.token).toEqual(Buffer.from(token));
        }
      }),
    );
  });

  it('is byte-exact: [1][6][magic][id][token]', () => {
    const id = peerIdFromIdentifier('x');
    const msg = encodeAuth(id, Buffer.from([0xaa]));
    expect(msg.subarray(0, 6)).toEqual(Buffer.from([1, 6, 0x21, 0x12, 0xa4, 0x42]));
    expect(msg.length).toBe(2 + 4 + 36 + 1);
  });

  it('refuses more than 212 bytes', () => {
    const msg = encodeAuth(peerIdFromIdentifier('x'), Buffer.alloc(213 - 42));
    expect(parseAuth(msg)).toEqual({ ok: false, violation: 'oversize_message' });
    expect(parseAuth(msg.subarray(0, 212)).ok).toBe(true);
  });

  it('auth response carries the instance URL; empty URL is refused', () => {
    expect(parseAuthResponse(encodeAuthResponse('rels://relay.example:443'))).toEqual({
      ok: true,
      value: 'rels://relay.example:443',
    });
    expect(() => encodeAuthResponse('')).toThrow();
    expect(parseAuthResponse(Buffer.from([1, 7]))).toEqual({ ok: false, violation: 'truncated_message' });
  });
});

describe('transport', () => {
  it('rewrites the destination with the sender in place, leaving the payload', () => {
    fc.assert(
      fc.property(peerIdArb, peerIdArb, fc.uint8Array({ maxLength: 1400 }), (dst, src, payload) => {
        const msg = encodeTransport(dst, Buffer.from(payload));
        const key = transportPeerKey(msg);
        expect(key.ok && key.value).toBe(peerKeyFromBytes(dst));
        rewriteTransportPeer(msg, src);
        expect(msg.subarray(0, 2)).toEqual(Buffer.from([1, 3]));
        expect(msg.subarray(HEADER_SIZE, TRANSPORT_HEADER_SIZE)).toEqual(src);
        expect(msg.subarray(TRANSPORT_HEADER_SIZE)).toEqual(Buffer.from(payload));
      }),
    );
  });

  it('refuses messages over 8820 bytes', () => {
    expect(transportPeerKey(Buffer.alloc(MAX_MESSAGE_SIZE + 1)).ok).toBe(false);
    expect(transportPeerKey(Buffer.alloc(MAX_MESSAGE_SIZE)).ok).toBe(true);
  });
});

describe('peer lists', () => {
  it('split at 244 IDs per message and round-trip', () => {
    fc.assert(
      fc.property(fc.array(peerIdArb, { maxLength: 700 }), (ids) => {
        const keys = ids.map(peerKeyFromBytes);
        const messages = encodePeerLists(MessageType.PeersOnline, keys);
        expect(messages.length).toBe(Math.ceil(keys.length / MAX_PEER_IDS_PER_MESSAGE));
        const decoded: PeerKey[] = [];
        for (const m of messages) {
          expect(m.length).toBeLessThanOrEqual(MAX_MESSAGE_SIZE);
          const list = parsePeerList(m);
          expect(list.ok).toBe(true);
          if (list.ok) decoded.push(...list.value);
        }
        expect(decoded).toEqual(keys);
      }),
    );
    expect(MAX_PEER_IDS_PER_MESSAGE).toBe(244);
  });

  it('refuse a body that is not a multiple of 36', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (length) => {
        fc.pre(length % PEER_ID_SIZE !== 0);
        const msg = Buffer.concat([Buffer.from([1, 8]), Buffer.alloc(length)]);
        expect(parsePeerList(msg)).toEqual({ ok: false, violation: 'bad_peer_list' });
      }),
    );
  });
});

describe('header', () => {
  it('accepts types 3..11 of version 1 and nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), (bytes) => {
        const msg = Buffer.from(bytes);
        const result = readMessageType(msg);
        const valid = msg.length >= 2 && msg[0] === 1 && (msg[1] as number) >= 3 && (msg[1] as number) <= 11;
        expect(result.ok).toBe(valid);
      }),
    );
  });

  it('never throws on garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const msg = Buffer.from(bytes);
        parseAuth(msg);
        parseAuthResponse(msg);
        parsePeerList(msg);
        transportPeerKey(msg);
      }),
    );
  });
});
