/**
 * Probe payloads: "nbpr", a kind byte and a sequence number. Ping goes A→B,
 * pong B→A with the same sequence number; the RTT is measured on A's clock.
 */
const MAGIC = Buffer.from('nbpr', 'ascii');
const SIZE = MAGIC.length + 1 + 4;

export type ProbePacketKind = 'ping' | 'pong';

export interface ProbePacket {
  kind: ProbePacketKind;
  seq: number;
}

export function encodeProbePacket(packet: ProbePacket): Buffer {
  const buf = Buffer.alloc(SIZE);
  MAGIC.copy(buf, 0);
  buf[MAGIC.length] = packet.kind === 'ping' ? 0 : 1;
  buf.writeUInt32BE(packet.seq >>> 0, MAGIC.length + 1);
  return buf;
}

/** Undefined for anything that is not a probe packet (the relay may carry other traffic). */
export function decodeProbePacket(buf: Buffer): ProbePacket | undefined {
  if (buf.length !== SIZE || !MAGIC.equals(buf.subarray(0, MAGIC.length))) return undefined;
  const kindByte = buf[MAGIC.length];
  if (kindByte !== 0 && kindByte !== 1) return undefined;
  return { kind: kindByte === 0 ? 'ping' : 'pong', seq: buf.readUInt32BE(MAGIC.length + 1) };
}
