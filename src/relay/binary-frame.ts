import type { Socket } from 'node:net';
import { WsOpcode, writeWsHeader, wsHeaderSize } from '../net/ws-frame.js';

/**
 * Bytes a message may have free in front of it, inside its own buffer, so
 * that its frame header is written in place (a mesh frame's records leave
 * them: the destination ID's last bytes, read before the message is sent).
 */
export const FRAME_HEADER_ROOM = 4;

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
  const headerSize = wsHeaderSize(length, false);
  if (headerRoom && headerSize <= FRAME_HEADER_ROOM) {
    const framed = Buffer.from(message.buffer, message.byteOffset - headerSize, headerSize + length);
    writeWsHeader(framed, headerSize, WsOpcode.Binary, length, false);
    socket.write(framed);
    return;
  }
  const header = Buffer.allocUnsafe(headerSize);
  writeWsHeader(header, headerSize, WsOpcode.Binary, length, false);
  socket.write(header);
  socket.write(message);
}
