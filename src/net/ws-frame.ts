/**
 * RFC 6455 frame headers, written by the mesh itself: the mesh is ours on both
 * ends, so it needs no general WebSocket library on its data path. Only what
 * the mesh sends is written: unfragmented binary frames and control frames.
 */
export const WsOpcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** Room a caller leaves before a payload so the header can be written in place (10 + mask key 4). */
export const WS_MAX_HEADER_SIZE = 14;
/** Control frames carry at most this much payload (RFC 6455 5.5). */
export const WS_MAX_CONTROL_PAYLOAD = 125;

export function wsHeaderSize(length: number, masked: boolean): number {
  const base = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/**
 * Writes a final frame's header so that it ends at `end` of `target` and
 * returns where it starts. A client must mask (RFC 6455 5.3); its key is zero,
 * which leaves the payload as it is: between pods masking guards nothing, and
 * a zero key spares the copy and XOR of every byte on both ends.
 */
export function writeWsHeader(
  target: Buffer,
  end: number,
  opcode: number,
  length: number,
  masked: boolean,
): number {
  const start = end - wsHeaderSize(length, masked);
  target[start] = 0x80 | opcode;
  const maskBit = masked ? 0x80 : 0;
  let offset = start + 2;
  if (length < 126) {
    target[start + 1] = maskBit | length;
  } else if (length < 0x10000) {
    target[start + 1] = maskBit | 126;
    target[start + 2] = length >>> 8;
    target[start + 3] = length & 0xff;
    offset = start + 4;
  } else {
    target[start + 1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 0x100000000), start + 2);
    target.writeUInt32BE(length >>> 0, start + 6);
    offset = start + 10;
  }
  if (masked) target.writeUInt32BE(0, offset);
  return start;
}

/** A whole frame (header and payload in one buffer): for control frames, which are small. */
export function wsFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const header = wsHeaderSize(payload.length, masked);
  const frame = Buffer.allocUnsafe(header + payload.length);
  writeWsHeader(frame, header, opcode, payload.length, masked);
  frame.set(payload, header);
  return frame;
}

/** A close frame's payload: the status code, then a UTF-8 reason cut to fit a control frame. */
export function wsClosePayload(code: number, reason: string): Buffer {
  const text = Buffer.from(reason).subarray(0, WS_MAX_CONTROL_PAYLOAD - 2);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  payload.set(text, 2);
  return payload;
}
