import { MAX_SHED_WINDOW_MS } from '../config/cluster-options.js';
import {
  MAX_MESSAGE_SIZE,
  MessageType,
  PEER_ID_SIZE,
  PROTOCOL_VERSION,
  TRANSPORT_HEADER_SIZE,
} from '../protocol/constants.js';
import { LastPeerKey } from '../protocol/last-peer-key.js';
import { hasPeerIdShape, peerKeyAt, type PeerKey } from '../protocol/peer-id.js';

/**
 * Mesh frames: one WebSocket binary message carries a batch of records,
 * each `[type: u8][length: u16 BE][body]`.
 *   transport: body = [destination peer ID: 36][relay transport message, sender ID already in place]
 *   not here:  body = [peer ID: 36] — "that peer is not on this instance"
 *   shed:      body = [count: u32 BE][window ms: u32 BE] — the leader asks this
 *              instance to close `count` peers spread over the window (rebalancing)
 */
export const MeshRecordType = { Transport: 1, NotHere: 2, Shed: 3 } as const;

export const RECORD_HEADER_SIZE = 3;
export const NOT_HERE_RECORD_SIZE = RECORD_HEADER_SIZE + PEER_ID_SIZE;
const SHED_BODY_SIZE = 8;
export const SHED_RECORD_SIZE = RECORD_HEADER_SIZE + SHED_BODY_SIZE;
// A shed window longer than MAX_SHED_WINDOW_MS is refused as malformed: no sane plan spreads closes over hours.
const MIN_TRANSPORT_BODY = PEER_ID_SIZE + TRANSPORT_HEADER_SIZE;
const MAX_TRANSPORT_BODY = PEER_ID_SIZE + MAX_MESSAGE_SIZE;

export type MeshFrameError =
  'truncated_record' | 'unknown_record' | 'bad_transport' | 'bad_peer_id' | 'bad_shed';

export function transportRecordSize(message: Buffer): number {
  return RECORD_HEADER_SIZE + PEER_ID_SIZE + message.length;
}

/** Writes a transport record at `offset` (`peerId` = exactly the destination's 36 ID bytes); returns the offset after it. */
export function writeTransportRecord(frame: Buffer, offset: number, peerId: Buffer, message: Buffer): number {
  frame[offset] = MeshRecordType.Transport;
  const length = PEER_ID_SIZE + message.length;
  frame[offset + 1] = length >>> 8;
  frame[offset + 2] = length & 0xff;
  // TypedArray#set copies without the view Buffer#copy builds for a range (two calls per message here).
  frame.set(peerId, offset + RECORD_HEADER_SIZE);
  frame.set(message, offset + RECORD_HEADER_SIZE + PEER_ID_SIZE);
  return offset + RECORD_HEADER_SIZE + PEER_ID_SIZE + message.length;
}

export function writeNotHereRecord(frame: Buffer, offset: number, peer: PeerKey): number {
  frame[offset] = MeshRecordType.NotHere;
  frame.writeUInt16BE(PEER_ID_SIZE, offset + 1);
  frame.write(peer, offset + RECORD_HEADER_SIZE, PEER_ID_SIZE, 'latin1');
  return offset + NOT_HERE_RECORD_SIZE;
}

export interface MeshShedRequest {
  count: number;
  windowMs: number;
}

export function writeShedRecord(frame: Buffer, offset: number, request: MeshShedRequest): number {
  frame[offset] = MeshRecordType.Shed;
  frame.writeUInt16BE(SHED_BODY_SIZE, offset + 1);
  frame.writeUInt32BE(request.count, offset + RECORD_HEADER_SIZE);
  frame.writeUInt32BE(request.windowMs, offset + RECORD_HEADER_SIZE + 4);
  return offset + SHED_RECORD_SIZE;
}

export interface MeshFrameVisitor {
  /**
   * `message` is a view into the frame. The 4 bytes before it (the end of the
   * destination ID, already read into `peer`) are the visitor's to overwrite:
   * the receiving session writes its WebSocket frame header there.
   */
  transport(peer: PeerKey, message: Buffer): void;
  notHere(peer: PeerKey): void;
  shed(request: MeshShedRequest): void;
}

/**
 * Validates the whole frame before visiting any record, so a malformed frame
 * delivers nothing. Returns the first problem found, or undefined.
 */
export function readMeshFrame(
  frame: Buffer,
  visitor: MeshFrameVisitor,
  destinations: LastPeerKey = new LastPeerKey(),
): MeshFrameError | undefined {
  const problem = validate(frame);
  if (problem) return problem;
  let offset = 0;
  while (offset < frame.length) {
    const type = frame[offset];
    const length = frame.readUInt16BE(offset + 1);
    const body = offset + RECORD_HEADER_SIZE;
    if (type === MeshRecordType.Transport)
      visitor.transport(destinations.read(frame, body), frame.subarray(body + PEER_ID_SIZE, body + length));
    else if (type === MeshRecordType.NotHere) visitor.notHere(peerKeyAt(frame, body));
    else visitor.shed({ count: frame.readUInt32BE(body), windowMs: frame.readUInt32BE(body + 4) });
    offset = body + length;
  }
  return undefined;
}

function validate(frame: Buffer): MeshFrameError | undefined {
  if (frame.length === 0) return 'truncated_record';
  let offset = 0;
  while (offset < frame.length) {
    if (offset + RECORD_HEADER_SIZE > frame.length) return 'truncated_record';
    const type = frame[offset];
    const length = frame.readUInt16BE(offset + 1);
    const body = offset + RECORD_HEADER_SIZE;
    if (body + length > frame.length) return 'truncated_record';
    if (type === MeshRecordType.Transport) {
      if (length < MIN_TRANSPORT_BODY || length > MAX_TRANSPORT_BODY) return 'bad_transport';
      const message = body + PEER_ID_SIZE;
      if (frame[message] !== PROTOCOL_VERSION || frame[message + 1] !== MessageType.Transport)
        return 'bad_transport';
      if (!hasPeerIdShape(frame, body) || !hasPeerIdShape(frame, message + 2)) return 'bad_peer_id';
    } else if (type === MeshRecordType.NotHere) {
      if (length !== PEER_ID_SIZE) return 'truncated_record';
      if (!hasPeerIdShape(frame, body)) return 'bad_peer_id';
    } else if (type === MeshRecordType.Shed) {
      if (length !== SHED_BODY_SIZE) return 'bad_shed';
      const count = frame.readUInt32BE(body);
      const windowMs = frame.readUInt32BE(body + 4);
      if (count === 0 || windowMs > MAX_SHED_WINDOW_MS) return 'bad_shed';
    } else {
      return 'unknown_record';
    }
    offset = body + length;
  }
  return undefined;
}
