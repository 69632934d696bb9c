import {
  AUTH_MAGIC,
  HEADER_SIZE,
  MAX_AUTH_MESSAGE_SIZE,
  MAX_AUTH_RESPONSE_SIZE,
  MAX_MESSAGE_SIZE,
  MAX_PEER_IDS_PER_MESSAGE,
  MessageType,
  PEER_ID_SIZE,
  PROTOCOL_VERSION,
  TRANSPORT_HEADER_SIZE,
} from './constants.js';
import { hasPeerIdShape, peerKeyAt, type PeerKey } from './peer-id.js';

/** Why a message was refused; used as a metric label, so the set is closed. */
export const PROTOCOL_VIOLATIONS = [
  'empty_message',
  'bad_version',
  'unknown_type',
  'legacy_type',
  'unexpected_type',
  'oversize_message',
  'truncated_message',
  'bad_magic',
  'bad_peer_id',
  'bad_peer_list',
] as const;

export type ProtocolViolation = (typeof PROTOCOL_VIOLATIONS)[number];

export type Result<T> = { ok: true; value: T } | { ok: false; violation: ProtocolViolation };

const fail = (violation: ProtocolViolation): { ok: false; violation: ProtocolViolation } => ({
  ok: false,
  violation,
});

const KNOWN_TYPES_MAX = MessageType.PeersWentOffline;

/** Reads the two-byte header; rejects what no receiver accepts (bad version, legacy, unknown). */
export function readMessageType(msg: Buffer): Result<MessageType> {
  if (msg.length < HEADER_SIZE) return fail('empty_message');
  if (msg[0] !== PROTOCOL_VERSION) return fail('bad_version');
  const type = msg[1] as number;
  if (type === MessageType.LegacyHello || type === MessageType.LegacyHelloResponse)
    return fail('legacy_type');
  if (type === MessageType.Unknown || type > KNOWN_TYPES_MAX) return fail('unknown_type');
  return { ok: true, value: type as MessageType };
}

export interface AuthMessage {
  peerId: Buffer;
  token: Buffer;
}

/** Parses a client's auth message; the returned buffers are views into `msg`. */
export function parseAuth(msg: Buffer): Result<AuthMessage> {
  const type = readMessageType(msg);
  if (!type.ok) return type;
  if (type.value !== MessageType.Auth) return fail('unexpected_type');
  if (msg.length > MAX_AUTH_MESSAGE_SIZE) return fail('oversize_message');
  const idStart = HEADER_SIZE + AUTH_MAGIC.length;
  if (msg.length < idStart + PEER_ID_SIZE) return fail('truncated_message');
  if (!AUTH_MAGIC.equals(msg.subarray(HEADER_SIZE, idStart))) return fail('bad_magic');
  if (!hasPeerIdShape(msg, idStart)) return fail('bad_peer_id');
  return {
    ok: true,
    value: {
      peerId: msg.subarray(idStart, idStart + PEER_ID_SIZE),
      token: msg.subarray(idStart + PEER_ID_SIZE),
    },
  };
}

export function encodeAuth(peerId: Buffer, token: Buffer): Buffer {
  return Buffer.concat([Buffer.from([PROTOCOL_VERSION, MessageType.Auth]), AUTH_MAGIC, peerId, token]);
}

export function encodeAuthResponse(instanceUrl: string): Buffer {
  const url = Buffer.from(instanceUrl, 'utf8');
  if (url.length === 0 || url.length + HEADER_SIZE > MAX_AUTH_RESPONSE_SIZE) {
    throw new RangeError('instance URL must be 1..8190 bytes');
  }
  return Buffer.concat([Buffer.from([PROTOCOL_VERSION, MessageType.AuthResponse]), url]);
}

export function parseAuthResponse(msg: Buffer): Result<string> {
  const type = readMessageType(msg);
  if (!type.ok) return type;
  if (type.value !== MessageType.AuthResponse) return fail('unexpected_type');
  if (msg.length > MAX_AUTH_RESPONSE_SIZE) return fail('oversize_message');
  if (msg.length === HEADER_SIZE) return fail('truncated_message');
  return { ok: true, value: msg.toString('utf8', HEADER_SIZE) };
}

/** Shared, never mutated: control messages with no body. */
export const CLOSE_MESSAGE: Buffer = Buffer.from([PROTOCOL_VERSION, MessageType.Close]);
export const HEALTH_CHECK_MESSAGE: Buffer = Buffer.from([PROTOCOL_VERSION, MessageType.HealthCheck]);

/** Destination (client → server) or sender (server → client) of a transport message. */
export function transportPeerKey(msg: Buffer): Result<PeerKey> {
  if (msg.length < TRANSPORT_HEADER_SIZE) return fail('truncated_message');
  if (msg.length > MAX_MESSAGE_SIZE) return fail('oversize_message');
  return { ok: true, value: peerKeyAt(msg, HEADER_SIZE) };
}

/** Replaces the destination with the sender, in place: the relay's only edit to data. */
/** `sender` is exactly the 36 ID bytes. */
export function rewriteTransportPeer(msg: Buffer, sender: Buffer): void {
  // TypedArray#set: one memcpy, where Buffer#copy of a range also builds a view per call.
  msg.set(sender, HEADER_SIZE);
}

export function encodeTransport(peerId: Buffer, payload: Buffer): Buffer {
  const msg = Buffer.allocUnsafe(TRANSPORT_HEADER_SIZE + payload.length);
  msg[0] = PROTOCOL_VERSION;
  msg[1] = MessageType.Transport;
  peerId.copy(msg, HEADER_SIZE);
  payload.copy(msg, TRANSPORT_HEADER_SIZE);
  return msg;
}

/** Peer IDs of a subscribe/unsubscribe/online/offline body. */
export function parsePeerList(msg: Buffer): Result<PeerKey[]> {
  if (msg.length > MAX_MESSAGE_SIZE) return fail('oversize_message');
  const bodyLength = msg.length - HEADER_SIZE;
  if (bodyLength % PEER_ID_SIZE !== 0) return fail('bad_peer_list');
  const keys: PeerKey[] = [];
  for (let offset = HEADER_SIZE; offset < msg.length; offset += PEER_ID_SIZE) {
    keys.push(peerKeyAt(msg, offset));
  }
  return { ok: true, value: keys };
}

/** Encodes a peer list, split so that no message exceeds MAX_PEER_IDS_PER_MESSAGE IDs. */
export function encodePeerLists(type: MessageType, keys: readonly PeerKey[]): Buffer[] {
  const messages: Buffer[] = [];
  for (let start = 0; start < keys.length; start += MAX_PEER_IDS_PER_MESSAGE) {
    const chunk = keys.slice(start, start + MAX_PEER_IDS_PER_MESSAGE);
    const msg = Buffer.allocUnsafe(HEADER_SIZE + chunk.length * PEER_ID_SIZE);
    msg[0] = PROTOCOL_VERSION;
    msg[1] = type;
    chunk.forEach((key, i) => msg.write(key, HEADER_SIZE + i * PEER_ID_SIZE, PEER_ID_SIZE, 'latin1'));
    messages.push(msg);
  }
  return messages;
}
