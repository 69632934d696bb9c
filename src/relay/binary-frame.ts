import type { Socket } from 'node:net';

/**
 * Bytes a message may have free in front of it, inside its own buffer, so
 * that its frame header is written in place (a mesh frame's records leave
 * them: the destination ID's last bytes, read before the message is sent).
 */
export const FRAME_HEADER_ROOM = 4;

const FIN_BINARY = 0x82;

/**
 * Writes `message` as one unmasked, unfragmented binary WebSocket frame from
 * server to client: the bytes ws's send() writes, without its per-call work
 * (options, validation, a header allocation and its own cork per message).
 * The caller checks that the WebSocket is open (ws drops sends after close).
 * `headerRoom`: the FRAME_HEADER_ROOM bytes before `message` may be
 * overwritten; header and payload then go out as one chunk, not two.
 */
export function writeBinaryFrame(socket: Socket, message: Buffer, headerRoom: boolean): void {
  const length = message.length;
  const headerSize = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  if (headerRoom && headerSize <= FRAME_HEADER_ROOM) {
    const framed = Buffer.from(message.buffer, message.byteOffset - headerSize, headerSize + length);
    writeHeader(framed, length);
    socket.write(framed);
    return;
  }
  const header = Buffer.allocUnsafe(headerSize);
  writeHeader(header, length);
  socket.write(header);
  socket.write(message);
}

function writeHeader(target: Buffer, length: number): void {
  target[0] = FIN_BINARY;
  if (length < 126) {
    target[1] = length;
  } else if (length < 65_536) {
    target[1] = 126;
    target[2] = length >>> 8;
    target[3] = length & 0xff;
  } else {
    target[1] = 127;
    target.writeUInt32BE(0, 2);
    target.writeUInt32BE(length, 6);
  }
}
