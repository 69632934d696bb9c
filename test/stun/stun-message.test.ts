import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  STUN_ATTR_SOFTWARE,
  STUN_ATTR_XOR_MAPPED_ADDRESS,
  STUN_BINDING_REQUEST,
  STUN_BINDING_SUCCESS_RESPONSE,
  buildBindingRequest,
  buildBindingSuccessResponse,
  decodeXorMappedAddress,
  findAttribute,
  parseBindingRequest,
  parseStunMessage,
} from '../../src/stun/stun-message.js';
import type { StunMessage } from '../../src/stun/stun-message.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

// Transaction id and addresses from the RFC 5769 sample responses (§2.2, §2.3).
const RFC5769_TRANSACTION_ID = hex('b7e7a701 bc34d686 fa87dfae');

function parsedOrFail(datagram: Uint8Array): StunMessage {
  const result = parseStunMessage(datagram);
  if (!result.ok) throw new Error(`expected a valid STUN message, got ${result.reason}`);
  return result.message;
}

function mappedAddressOf(response: Buffer) {
  const message = parsedOrFail(response);
  const attribute = findAttribute(message, STUN_ATTR_XOR_MAPPED_ADDRESS);
  expect(attribute).toBeDefined();
  return decodeXorMappedAddress(attribute!.value, message.transactionId);
}

/** Compares IPv6 text through node:net's own parser, independent of the codec's formatter. */
function sameIpv6(a: string, b: string): boolean {
  const list = new BlockList();
  list.addAddress(a, 'ipv6');
  return list.check(b, 'ipv6');
}

/** IPv4-mapped addresses are answered as IPv4, so the IPv6 round-trip leaves them out. */
function isV4Mapped(address: string): boolean {
  const list = new BlockList();
  list.addSubnet('::ffff:0:0', 96, 'ipv6');
  return list.check(address, 'ipv6');
}

describe('buildBindingSuccessResponse', () => {
  it('encodes an IPv4 XOR-MAPPED-ADDRESS byte for byte (RFC 5769 §2.2 values)', () => {
    const response = buildBindingSuccessResponse({
      transactionId: RFC5769_TRANSACTION_ID,
      address: '192.0.2.1',
      port: 32853,
      software: 'test vector',
    });
    expect(response.toString('hex')).toBe(
      hex(`
        0101 001c 2112a442 b7e7a701 bc34d686 fa87dfae
        0020 0008 0001 a147 e112a643
        8022 000b 74657374 20766563 746f7200
      `).toString('hex'),
    );
  });

  it('encodes an IPv6 XOR-MAPPED-ADDRESS with cookie + transaction id (RFC 5769 §2.3 values)', () => {
    const response = buildBindingSuccessResponse({
      transactionId: RFC5769_TRANSACTION_ID,
      address: '2001:db8:1234:5678:11:2233:4455:6677',
      port: 32853,
    });
    expect(response.toString('hex')).toBe(
      hex(`
        0101 0018 2112a442 b7e7a701 bc34d686 fa87dfae
        0020 0014 0002 a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
      `).toString('hex'),
    );
    expect(mappedAddressOf(response)).toEqual({
      family: 'IPv6',
      address: '2001:db8:1234:5678:11:2233:4455:6677',
      port: 32853,
    });
  });

  it('answers an IPv4-mapped IPv6 sender (dual-stack socket) with an IPv4 address', () => {
    const response = buildBindingSuccessResponse({
      transactionId: RFC5769_TRANSACTION_ID,
      address: '::ffff:192.0.2.1',
      port: 1,
    });
    expect(mappedAddressOf(response)).toEqual({ family: 'IPv4', address: '192.0.2.1', port: 1 });
  });

  it('ignores an IPv6 zone id', () => {
    const response = buildBindingSuccessResponse({
      transactionId: RFC5769_TRANSACTION_ID,
      address: 'fe80::1%eth0',
      port: 5,
    });
    expect(mappedAddressOf(response)).toEqual({ family: 'IPv6', address: 'fe80::1', port: 5 });
  });

  it('rejects invalid input from the caller', () => {
    const valid = { transactionId: RFC5769_TRANSACTION_ID, address: '127.0.0.1', port: 1 };
    expect(() => buildBindingSuccessResponse({ ...valid, address: 'localhost' })).toThrow(RangeError);
    expect(() => buildBindingSuccessResponse({ ...valid, port: 70000 })).toThrow(RangeError);
    expect(() => buildBindingSuccessResponse({ ...valid, transactionId: Buffer.alloc(11) })).toThrow(
      RangeError,
    );
    expect(() => buildBindingSuccessResponse({ ...valid, software: 'x'.repeat(128) })).toThrow(RangeError);
  });
});

describe('parseStunMessage', () => {
  it('walks attributes including padding', () => {
    const datagram = hex(`
      0001 0014 2112a442 000102030405060708090a0b
      8022 0005 6e622d72 6c000000
      c057 0004 00010002
    `);
    const message = parsedOrFail(datagram);
    expect(message.type).toBe(STUN_BINDING_REQUEST);
    expect(message.transactionId.toString('hex')).toBe('000102030405060708090a0b');
    expect(message.attributes.map((a) => [a.type, a.value.toString('hex')])).toEqual([
      [STUN_ATTR_SOFTWARE, '6e622d726c'],
      [0xc057, '00010002'],
    ]);
  });

  it('accepts a header-only binding request', () => {
    const request = buildBindingRequest(Buffer.alloc(12, 7));
    expect(request.length).toBe(20);
    expect(parseBindingRequest(request).ok).toBe(true);
  });

  const validRequest = buildBindingRequest(hex('000102030405060708090a0b'), 'probe');
  const withByte = (offset: number, value: number): Buffer => {
    const copy = Buffer.from(validRequest);
    copy[offset] = value;
    return copy;
  };

  it.each([
    ['too_short', '19 bytes', validRequest.subarray(0, 19)],
    ['too_short', 'empty datagram', Buffer.alloc(0)],
    ['bad_leading_bits', 'first bit set', withByte(0, 0x80)],
    ['bad_leading_bits', 'second bit set', withByte(0, 0x40)],
    ['bad_cookie', 'wrong magic cookie', withByte(4, 0x21 ^ 0xff)],
    ['bad_length', 'length beyond the datagram', withByte(3, validRequest[3]! + 4)],
    ['bad_length', 'length not a multiple of 4', withByte(3, validRequest[3]! - 2)],
    ['bad_length', 'trailing bytes', Buffer.concat([validRequest, Buffer.alloc(4)])],
    ['truncated_attribute', 'value runs past the end', withByte(23, 9)],
    ['truncated_attribute', 'huge attribute length', withByte(22, 0xff)],
  ] as const)('reports %s for %s', (reason, _case, datagram) => {
    expect(parseStunMessage(datagram)).toEqual({ ok: false, reason });
  });

  it('parseBindingRequest rejects other message types, parseStunMessage accepts them', () => {
    const response = buildBindingSuccessResponse({
      transactionId: Buffer.alloc(12),
      address: '127.0.0.1',
      port: 1,
    });
    expect(parseStunMessage(response).ok).toBe(true);
    expect(parseBindingRequest(response)).toEqual({ ok: false, reason: 'not_binding_request' });
  });

  it('accepts a Uint8Array that is a view into a larger buffer', () => {
    const request = buildBindingRequest(Buffer.alloc(12, 1));
    const backing = new Uint8Array(request.length + 8);
    backing.set(request, 4);
    const view = new Uint8Array(backing.buffer, 4, request.length);
    expect(parsedOrFail(view).transactionId.equals(Buffer.alloc(12, 1))).toBe(true);
  });
});

describe('decodeXorMappedAddress', () => {
  it('returns undefined for values of the wrong size or family', () => {
    const id = Buffer.alloc(12);
    expect(decodeXorMappedAddress(hex('0001a147'), id)).toBeUndefined();
    expect(decodeXorMappedAddress(hex('0003a147 e112a643'), id)).toBeUndefined();
    expect(decodeXorMappedAddress(hex('0002a147 e112a643'), id)).toBeUndefined();
  });
});

describe('codec properties', () => {
  const transactionId = fc.uint8Array({ minLength: 12, maxLength: 12 });
  const software = fc.option(fc.string({ maxLength: 40 }), { nil: undefined });
  const port = fc.integer({ min: 0, max: 0xffff });

  it('binding request round-trips transaction id and SOFTWARE', () => {
    fc.assert(
      fc.property(transactionId, software, (id, name) => {
        const request = buildBindingRequest(id, name);
        expect(request.length % 4).toBe(0);
        const result = parseBindingRequest(request);
        if (!result.ok) throw new Error(result.reason);
        expect(result.message.type).toBe(STUN_BINDING_REQUEST);
        expect(Buffer.from(result.message.transactionId)).toEqual(Buffer.from(id));
        const softwareAttribute = findAttribute(result.message, STUN_ATTR_SOFTWARE);
        expect(softwareAttribute?.value.toString('utf8')).toBe(name);
      }),
    );
  });

  it('IPv4 success response round-trips address, port and transaction id', () => {
    fc.assert(
      fc.property(transactionId, fc.ipV4(), port, (id, address, p) => {
        const response = buildBindingSuccessResponse({ transactionId: id, address, port: p });
        const message = parsedOrFail(response);
        expect(message.type).toBe(STUN_BINDING_SUCCESS_RESPONSE);
        expect(Buffer.from(message.transactionId)).toEqual(Buffer.from(id));
        expect(mappedAddressOf(response)).toEqual({ family: 'IPv4', address, port: p });
      }),
    );
  });

  it('IPv6 success response round-trips address, port and transaction id', () => {
    fc.assert(
      fc.property(
        transactionId,
        fc.ipV6().filter((a) => !isV4Mapped(a)),
        port,
        (id, address, p) => {
          const response = buildBindingSuccessResponse({ transactionId: id, address, port: p });
          const decoded = mappedAddressOf(response);
          expect(decoded?.family).toBe('IPv6');
          expect(decoded?.port).toBe(p);
          expect(sameIpv6(address, decoded!.address)).toBe(true);
        },
      ),
    );
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
        const result = parseStunMessage(bytes);
        expect(typeof result.ok).toBe('boolean');
      }),
    );
  });

  it('never throws on a valid header followed by random attribute bytes', () => {
    const body = fc
      .uint8Array({ maxLength: 96 })
      .map((bytes) => bytes.subarray(0, bytes.length - (bytes.length % 4)));
    fc.assert(
      fc.property(transactionId, body, (id, attributes) => {
        const header = buildBindingRequest(id);
        header.writeUInt16BE(attributes.length, 2);
        const result = parseBindingRequest(Buffer.concat([header, attributes]));
        if (!result.ok) expect(result.reason).toBe('truncated_attribute');
        else expect(result.message.attributes.every((a) => a.value.length <= attributes.length)).toBe(true);
      }),
    );
  });
});
