import { describe, expect, it } from 'vitest';
import { MAX_SHED_WINDOW_MS } from '../../src/config/cluster-options.js';
import {
  NOT_HERE_RECORD_SIZE,
  readMeshFrame,
  SHED_RECORD_SIZE,
  transportRecordSize,
  writeNotHereRecord,
  writeShedRecord,
  writeTransportRecord,
  type MeshShedRequest,
} from '../../src/cluster/mesh-frame.js';
import { encodeTransport } from '../../src/protocol/codec.js';
import { peerIdFromIdentifier, peerKeyFromBytes, type PeerKey } from '../../src/protocol/peer-id.js';

const alice = peerIdFromIdentifier('alice');
const bob = peerIdFromIdentifier('bob');

function visit(frame: Buffer) {
  const seen: (string | MeshShedRequest)[] = [];
  const problem = readMeshFrame(frame, {
    transport: (peer: PeerKey, message: Buffer) =>
      seen.push(`transport ${peer === peerKeyFromBytes(bob)} ${message.length}`),
    notHere: (peer: PeerKey) => seen.push(`notHere ${peer === peerKeyFromBytes(alice)}`),
    shed: (request) => seen.push(request),
  });
  return { problem, seen };
}

describe('mesh frames', () => {
  it('carries transport, not-here and shed records in one frame, read back in order', () => {
    const message = encodeTransport(alice, Buffer.from('hello'));
    const size = transportRecordSize(message) + NOT_HERE_RECORD_SIZE + SHED_RECORD_SIZE;
    const frame = Buffer.alloc(size);
    let offset = writeTransportRecord(frame, 0, bob, message);
    offset = writeNotHereRecord(frame, offset, peerKeyFromBytes(alice));
    offset = writeShedRecord(frame, offset, { count: 7, windowMs: 90_000 });
    expect(offset).toBe(size);
    expect(visit(frame)).toEqual({
      problem: undefined,
      seen: [`transport true ${message.length}`, 'notHere true', { count: 7, windowMs: 90_000 }],
    });
  });

  it('refuses a malformed frame as a whole, naming the problem, and delivers none of it', () => {
    const message = encodeTransport(alice, Buffer.from('x'));
    const good = Buffer.alloc(transportRecordSize(message));
    writeTransportRecord(good, 0, bob, message);
    const shed = (request: MeshShedRequest): Buffer => {
      const frame = Buffer.alloc(SHED_RECORD_SIZE);
      writeShedRecord(frame, 0, request);
      return frame;
    };
    const unknown = Buffer.from([9, 0, 0]);
    const notTransport = Buffer.from(good);
    notTransport[3 + 36 + 1] = 5; // the inner message is a health check, not transport
    const badId = Buffer.from(good);
    badId[3] = 0xff;
    const cases: [Buffer, string][] = [
      [Buffer.alloc(0), 'truncated_record'],
      [good.subarray(0, good.length - 1), 'truncated_record'],
      [Buffer.concat([good, unknown]), 'unknown_record'],
      [notTransport, 'bad_transport'],
      [badId, 'bad_peer_id'],
      [shed({ count: 0, windowMs: 1_000 }), 'bad_shed'],
      [shed({ count: 1, windowMs: MAX_SHED_WINDOW_MS + 1 }), 'bad_shed'],
    ];
    for (const [frame, problem] of cases) expect(visit(frame)).toEqual({ problem, seen: [] });
    expect(visit(shed({ count: 1, windowMs: MAX_SHED_WINDOW_MS })).problem).toBeUndefined();
  });
});
