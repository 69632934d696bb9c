/**
 * STUN (RFC 5389) codec for the Binding method only. Pure functions, no I/O: the server feeds it
 * datagrams and sends whatever it builds.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const STUN_HEADER_LENGTH = 20;
export const STUN_MAGIC_COOKIE = 0x2112a442;
export const STUN_TRANSACTION_ID_LENGTH = 12;

export const STUN_BINDING_REQUEST = 0x0001;
export const STUN_BINDING_SUCCESS_RESPONSE = 0x0101;

export const STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020;
export const STUN_ATTR_SOFTWARE = 0x8022;

const ATTRIBUTE_HEADER_LENGTH = 4;
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
// RFC 5389 §15.10: SOFTWARE is fewer than 128 characters and at most 763 bytes.
const SOFTWARE_MAX_CHARS = 127;
const SOFTWARE_MAX_BYTES = 763;

export type StunMalformedReason =
  | 'too_short'
  | 'bad_leading_bits'
  | 'bad_cookie'
  | 'bad_length'
  | 'truncated_attribute'
  | 'not_binding_request';

export interface StunAttribute {
  type: number;
  /** View into the parsed datagram (not a copy), without padding. */
  value: Buffer;
}

export interface StunMessage {
  type: number;
  /** View into the parsed datagram (not a copy). */
  transactionId: Buffer;
  attributes: StunAttribute[];
}

export type StunParseResult = { ok: true; message: StunMessage } | { ok: false; reason: StunMalformedReason };

export interface MappedAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  port: number;
}

export interface BindingSuccessResponseInput {
  transactionId: Uint8Array;
  /** IPv4 or IPv6 literal as reported by node:dgram; IPv4-mapped IPv6 is answered as IPv4. */
  address: string;
  port: number;
  software?: string;
}

/** Parses any STUN message; never throws, malformed input yields a reason. */
export function parseStunMessage(datagram: Uint8Array): StunParseResult {
  const buf = asBuffer(datagram);
  if (buf.length < STUN_HEADER_LENGTH) return malformed('too_short');
  // The two most significant bits are zero in every STUN message; this separates STUN from
  // other protocols multiplexed on the same port (RFC 5389 §6).
  if ((buf[0]! & 0xc0) !== 0) return malformed('bad_leading_bits');
  if (buf.readUInt32BE(4) !== STUN_MAGIC_COOKIE) return malformed('bad_cookie');

  const bodyLength = buf.readUInt16BE(2);
  if (bodyLength % 4 !== 0 || bodyLength !== buf.length - STUN_HEADER_LENGTH) return malformed('bad_length');

  const attributes: StunAttribute[] = [];
  let offset = STUN_HEADER_LENGTH;
  while (offset < buf.length) {
    if (buf.length - offset < ATTRIBUTE_HEADER_LENGTH) return malformed('truncated_attribute');
    const type = buf.readUInt16BE(offset);
    const valueLength = buf.readUInt16BE(offset + 2);
    const valueStart = offset + ATTRIBUTE_HEADER_LENGTH;
    // Padding must be present too, otherwise the next attribute would start mid-word.
    const next = valueStart + padToWord(valueLength);
    if (next > buf.length) return malformed('truncated_attribute');
    attributes.push({ type, value: buf.subarray(valueStart, valueStart + valueLength) });
    offset = next;
  }

  return {
    ok: true,
    message: {
      type: buf.readUInt16BE(0),
      transactionId: buf.subarray(8, STUN_HEADER_LENGTH),
      attributes,
    },
  };
}

/** Like parseStunMessage, but anything other than a Binding Request is reported as malformed. */
export function parseBindingRequest(datagram: Uint8Array): StunParseResult {
  const result = parseStunMessage(datagram);
  if (result.ok && result.message.type !== STUN_BINDING_REQUEST) return malformed('not_binding_request');
  return result;
}

export function findAttribute(message: StunMessage, type: number): StunAttribute | undefined {
  return message.attributes.find((attribute) => attribute.type === type);
}

/** Builds a Binding Request, optionally with SOFTWARE; used by tests and health probes. */
export function buildBindingRequest(transactionId: Uint8Array, software?: string): Buffer {
  const attributes = software === undefined ? [] : [encodeSoftware(software)];
  return encodeMessage(STUN_BINDING_REQUEST, transactionId, attributes);
}

/** Builds the answer to a Binding Request: XOR-MAPPED-ADDRESS, then SOFTWARE if given. Throws on bad input. */
export function buildBindingSuccessResponse(input: BindingSuccessResponseInput): Buffer {
  const attributes = [encodeXorMappedAddress(input.address, input.port, input.transactionId)];
  if (input.software !== undefined) attributes.push(encodeSoftware(input.software));
  return encodeMessage(STUN_BINDING_SUCCESS_RESPONSE, input.transactionId, attributes);
}

/** Decodes an XOR-MAPPED-ADDRESS value; undefined if the value is not a well-formed one. */
export function decodeXorMappedAddress(
  value: Uint8Array,
  transactionId: Uint8Array,
): MappedAddress | undefined {
  const buf = asBuffer(value);
  if (buf.length < 4 || transactionId.length !== STUN_TRANSACTION_ID_LENGTH) return undefined;
  const family = buf[1];
  const port = buf.readUInt16BE(2) ^ (STUN_MAGIC_COOKIE >>> 16);
  const mask = xorMask(transactionId);
  if (family === FAMILY_IPV4 && buf.length === 8) {
    const bytes = xorBytes(buf.subarray(4, 8), mask);
    return { family: 'IPv4', address: bytes.join('.'), port };
  }
  if (family === FAMILY_IPV6 && buf.length === 20) {
    return { family: 'IPv6', address: formatIpv6(xorBytes(buf.subarray(4, 20), mask)), port };
  }
  return undefined;
}

function encodeMessage(type: number, transactionId: Uint8Array, attributes: Buffer[]): Buffer {
  if (transactionId.length !== STUN_TRANSACTION_ID_LENGTH) {
    throw new RangeError(`STUN transaction id must be ${STUN_TRANSACTION_ID_LENGTH} bytes`);
  }
  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(STUN_HEADER_LENGTH);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(body.length, 2);
  header.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  header.set(transactionId, 8);
  return Buffer.concat([header, body]);
}

function encodeAttribute(type: number, value: Uint8Array): Buffer {
  // Buffer.alloc zero-fills, so the padding bytes are zeros.
  const attribute = Buffer.alloc(ATTRIBUTE_HEADER_LENGTH + padToWord(value.length));
  attribute.writeUInt16BE(type, 0);
  attribute.writeUInt16BE(value.length, 2);
  attribute.set(value, ATTRIBUTE_HEADER_LENGTH);
  return attribute;
}

function encodeSoftware(software: string): Buffer {
  const bytes = Buffer.from(software, 'utf8');
  if ([...software].length > SOFTWARE_MAX_CHARS || bytes.length > SOFTWARE_MAX_BYTES) {
    throw new RangeError(`STUN SOFTWARE must be under ${SOFTWARE_MAX_CHARS + 1} characters`);
  }
  return encodeAttribute(STUN_ATTR_SOFTWARE, bytes);
}

function encodeXorMappedAddress(address: string, port: number, transactionId: Uint8Array): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`invalid port ${port}`);
  if (transactionId.length !== STUN_TRANSACTION_ID_LENGTH) {
    throw new RangeError(`STUN transaction id must be ${STUN_TRANSACTION_ID_LENGTH} bytes`);
  }
  const addressBytes = addressToBytes(address);
  const value = Buffer.alloc(4 + addressBytes.length);
  value[1] = addressBytes.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  value.writeUInt16BE(port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  value.set(xorBytes(addressBytes, xorMask(transactionId)), 4);
  return encodeAttribute(STUN_ATTR_XOR_MAPPED_ADDRESS, value);
}

/** Cookie followed by transaction id: IPv4 uses the first 4 bytes, IPv6 all 16 (RFC 5389 §15.2). */
function xorMask(transactionId: Uint8Array): Buffer {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  mask.set(transactionId, 4);
  return mask;
}

function xorBytes(bytes: Uint8Array, mask: Uint8Array): Buffer {
  return Buffer.from(bytes.map((byte, i) => byte ^ mask[i]!));
}

/** 4 bytes for IPv4 (including IPv4-mapped IPv6, as a dual-stack socket reports v4 clients), else 16. */
function addressToBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  const withoutZone = address.split('%')[0]!;
  if (!isIPv6(withoutZone)) throw new RangeError(`not an IP address: ${address}`);
  const bytes = parseIpv6(withoutZone);
  const isV4Mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return isV4Mapped ? bytes.subarray(12) : bytes;
}

/** Expects text already validated by isIPv6 (no zone). */
function parseIpv6(text: string): Buffer {
  const toGroups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });

  const compressionAt = text.indexOf('::');
  let groups: number[];
  if (compressionAt === -1) {
    groups = toGroups(text);
  } else {
    const head = toGroups(text.slice(0, compressionAt));
    const tail = toGroups(text.slice(compressionAt + 2));
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }

  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (2+ groups) of zeros as "::". */
function formatIpv6(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = (part: number[]): string => part.map((group) => group.toString(16)).join(':');
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

function padToWord(length: number): number {
  return (length + 3) & ~3;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function malformed(reason: StunMalformedReason): StunParseResult {
  return { ok: false, reason };
}
