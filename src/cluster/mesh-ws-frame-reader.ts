import { WS_MAX_CONTROL_PAYLOAD, WsOpcode } from '../net/ws-frame.js';

/** Why a byte stream is not the mesh's WebSocket frames (the protocol-error counter's reasons). */
export type WsFrameError = 'text_frame' | 'fragmented_frame' | 'bad_frame' | 'oversized_frame';

export interface WsFrameHandler {
  /**
   * A binary message: a view into the bytes read, or, when it spanned reads,
   * the buffer it was assembled in (`assembled`; from assemblyBuffer if given).
   */
  binary(payload: Buffer, assembled: boolean): void;
  /** Memory for a payload that spans reads (default: a fresh buffer). */
  assemblyBuffer?(length: number): Buffer;
  ping(payload: Buffer): void;
  pong(payload: Buffer): void;
  /** `code` is undefined when the close frame carries none. */
  close(code: number | undefined, reason: Buffer): void;
}

/**
 * Reads RFC 6455 frames from a byte stream fed in chunks as they were read:
 * a frame may be split across chunks and a chunk may hold many frames. A frame
 * read whole from one chunk is handed over as a view into it (no copy); one
 * that spans chunks is assembled once into a buffer of its own size. The mesh
 * never fragments messages, so fragments are refused rather than reassembled.
 * After an error, a close frame or stop(), nothing more is handed over.
 */
export class WsFrameReader {
  readonly #handler: WsFrameHandler;
  readonly #maxPayload: number;
  /** Frames from a client are masked, frames from a server are not (RFC 6455 5.1). */
  readonly #masked: boolean;
  /** Bytes of a header that ended a chunk, kept until the next one completes it. */
  #partialHeader: Buffer | undefined;
  /** The payload being assembled across chunks. */
  #payload: Buffer | undefined;
  #filled = 0;
  #opcode = 0;
  #maskKey = 0;
  #stopped = false;

  constructor(handler: WsFrameHandler, options: { maxPayload: number; expectMasked: boolean }) {
    this.#handler = handler;
    this.#maxPayload = options.maxPayload;
    this.#masked = options.expectMasked;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Nothing more is handed over (the link failed or is closing). */
  stop(): void {
    this.#stopped = true;
    this.#payload = undefined;
    this.#partialHeader = undefined;
  }

  /** Reads the next chunk; returns the first problem found (and stops), or undefined. */
  push(chunk: Buffer): WsFrameError | undefined {
    if (this.#stopped) return undefined;
    let data = chunk;
    if (this.#partialHeader !== undefined) {
      // Rare (a header cut by a read boundary): one small concatenation.
      data = Buffer.concat([this.#partialHeader, chunk]);
      this.#partialHeader = undefined;
    }
    let offset = 0;
    while (offset < data.length && !this.#stopped) {
      if (this.#payload !== undefined) {
        offset = this.#fill(data, offset);
        continue;
      }
      const result = this.#readHeader(data, offset);
      if (typeof result === 'string') {
        this.stop();
        return result;
      }
      if (result < 0) {
        this.#partialHeader = Buffer.from(data.subarray(offset));
        return undefined;
      }
      offset = result;
    }
    return undefined;
  }

  /** Parses the header at `offset` and hands over or starts the payload; returns the offset after what it took, -1 for "header incomplete". */
  #readHeader(data: Buffer, offset: number): number | WsFrameError {
    const available = data.length - offset;
    if (available < 2) return -1;
    const b0 = data[offset] as number;
    const b1 = data[offset + 1] as number;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return 'bad_frame';
    if (opcode === WsOpcode.Text) return 'text_frame';
    if (opcode === WsOpcode.Continuation) return 'fragmented_frame';
    const control = opcode === WsOpcode.Close || opcode === WsOpcode.Ping || opcode === WsOpcode.Pong;
    if (opcode !== WsOpcode.Binary && !control) return 'bad_frame';
    if (!fin) return control ? 'bad_frame' : 'fragmented_frame';
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.#masked) return 'bad_frame';
    let length = b1 & 0x7f;
    let header = 2;
    if (control && length > WS_MAX_CONTROL_PAYLOAD) return 'bad_frame';
    if (length === 126) {
      if (available < 4) return -1;
      length = data.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (available < 10) return -1;
      const high = data.readUInt32BE(offset + 2);
      // The most significant bit must be 0 (RFC 6455 5.2); anything else beyond 32 bits is far too large.
      if (high >= 0x80000000) return 'bad_frame';
      if (high !== 0) return 'oversized_frame';
      length = data.readUInt32BE(offset + 6);
      header = 10;
    }
    if (length > this.#maxPayload) return 'oversized_frame';
    // A close frame's payload is empty or starts with a 2-byte code (RFC 6455 5.5.1).
    if (opcode === WsOpcode.Close && length === 1) return 'bad_frame';
    if (masked) {
      if (available < header + 4) return -1;
      this.#maskKey = data.readUInt32BE(offset + header);
      header += 4;
    } else {
      this.#maskKey = 0;
    }
    this.#opcode = opcode;
    const start = offset + header;
    const end = start + length;
    if (end <= data.length) {
      const payload = data.subarray(start, end);
      this.#deliver(payload, false);
      return end;
    }
    this.#payload = this.#handler.assemblyBuffer?.(length) ?? Buffer.allocUnsafe(length);
    this.#filled = 0;
    return this.#fill(data, start);
  }

  #fill(data: Buffer, offset: number): number {
    const payload = this.#payload as Buffer;
    const take = Math.min(payload.length - this.#filled, data.length - offset);
    payload.set(data.subarray(offset, offset + take), this.#filled);
    this.#filled += take;
    if (this.#filled === payload.length) {
      this.#payload = undefined;
      this.#deliver(payload, true);
    }
    return offset + take;
  }

  #deliver(payload: Buffer, assembled: boolean): void {
    if (this.#maskKey !== 0) unmask(payload, this.#maskKey);
    const handler = this.#handler;
    switch (this.#opcode) {
      case WsOpcode.Binary:
        handler.binary(payload, assembled);
        return;
      case WsOpcode.Ping:
        handler.ping(payload);
        return;
      case WsOpcode.Pong:
        handler.pong(payload);
        return;
      default: {
        // A close frame ends the stream: what follows it is not read.
        this.stop();
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
        handler.close(code, payload.subarray(2));
      }
    }
  }
}

/** Only a peer that is not a mesh pod (a test, a fuzzer) sends a non-zero key; ours is zero. */
function unmask(payload: Buffer, key: number): void {
  const k = [key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff];
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (k[i & 3] as number);
}
