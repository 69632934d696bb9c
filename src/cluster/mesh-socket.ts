import type { Socket } from 'node:net';
import { WsFrameReader, type WsFrameError } from './mesh-ws-frame-reader.js';
import { WS_MAX_HEADER_SIZE, WsOpcode, wsClosePayload, wsFrame, writeWsHeader } from '../net/ws-frame.js';

/** How long a closing link waits for the other side to end the connection before it is cut. */
const CLOSE_LINGER_MS = 1_000;

export interface MeshSocketEvents {
  /**
   * A binary message: a view into the bytes read, valid for as long as the
   * receiver keeps it; `assembled`: it spanned reads and is in a buffer from
   * assemblyBuffer (or a fresh one).
   */
  message(payload: Buffer, assembled: boolean): void;
  /** Memory for a message that spans reads (default: a fresh buffer per message). */
  assemblyBuffer?(length: number): Buffer;
  /** Any frame arrived (the link's liveness). */
  heard(): void;
  /** The stream is not the mesh's framing; the socket is already closing. */
  protocolError(reason: WsFrameError): void;
  /** The connection is gone (after a close handshake, a cut or an error). */
  closed(): void;
}

/**
 * One authenticated mesh connection after its WebSocket upgrade, framed by
 * our own code on the raw socket: RFC 6455 binary frames (unmasked from the
 * accepting side, masked with a zero key from the dialling side), so a pod on
 * either end may still use a general WebSocket library.
 */
export class MeshSocket {
  readonly #socket: Socket;
  readonly #head: Buffer;
  readonly #masks: boolean;
  readonly #reader: WsFrameReader;
  #events: MeshSocketEvents | undefined;
  #open = true;
  #closeReceived = false;

  /**
   * `head`: bytes read past the upgrade response (the first frames, if any).
   * `role`: the dialling side is the WebSocket client (it masks, the other side must not).
   */
  constructor(socket: Socket, head: Buffer, role: 'client' | 'server', maxPayload: number) {
    this.#socket = socket;
    this.#head = head;
    this.#masks = role === 'client';
    socket.setNoDelay(true);
    socket.setTimeout(0);
    // From the hand-over on: an unwatched socket error would end the process; a reset ends the link.
    socket.on('error', () => socket.destroy());
    this.#reader = new WsFrameReader(
      {
        binary: (payload, assembled) => {
          const events = this.#events as MeshSocketEvents;
          events.heard();
          events.message(payload, assembled);
        },
        assemblyBuffer: (length) => this.#events?.assemblyBuffer?.(length) ?? Buffer.allocUnsafe(length),
        ping: (payload) => {
          this.#events?.heard();
          this.#writeControl(WsOpcode.Pong, payload);
        },
        pong: () => this.#events?.heard(),
        close: (code) => {
          this.#closeReceived = true;
          // Echo the code (RFC 6455 5.5.1), then end our half: the other side has ended its writes.
          if (this.#open) this.close(code ?? 1000, '');
          else this.#socket.end();
        },
      },
      { maxPayload, expectMasked: !this.#masks },
    );
  }

  /** Starts reading; events go to `events` from now on. */
  start(events: MeshSocketEvents): void {
    this.#events = events;
    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('end', () => {
      // The other side ended without a close frame or after ours: nothing more will come.
      this.#open = false;
      socket.end();
    });
    socket.once('close', () => {
      this.#open = false;
      this.#reader.stop();
      events.closed();
    });
    if (this.#head.length > 0) this.#read(this.#head);
  }

  /** Open: the close handshake has not started and the connection is up. */
  get isOpen(): boolean {
    return this.#open && !this.#socket.destroyed;
  }

  /**
   * Sends `buffer[start, end)` as one binary frame. The WebSocket header is
   * written into the bytes before `start`, which the caller leaves free
   * (at least WS_MAX_HEADER_SIZE), so a frame is one contiguous write.
   */
  sendBinary(buffer: Buffer, start: number, end: number, done: (err?: Error | null) => void): void {
    if (start < WS_MAX_HEADER_SIZE) throw new RangeError('no room for the frame header');
    const headerStart = writeWsHeader(buffer, start, WsOpcode.Binary, end - start, this.#masks);
    this.#socket.write(buffer.subarray(headerStart, end), done);
  }

  ping(): void {
    this.#writeControl(WsOpcode.Ping, Buffer.alloc(0));
  }

  /** Starts the close handshake; nothing read after this is handed over. */
  close(code: number, reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    this.#reader.stop();
    const socket = this.#socket;
    if (!socket.destroyed) {
      socket.write(wsFrame(WsOpcode.Close, wsClosePayload(code, reason), this.#masks));
      // The accepting side ends the TCP connection first (RFC 6455 7.1.1); the dialling side waits
      // for it, up to the linger time, unless the other side already sent its close.
      if (!this.#masks || this.#closeReceived) socket.end();
      setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
    }
  }

  /** Cuts the connection without a close handshake. */
  terminate(): void {
    this.#open = false;
    this.#reader.stop();
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    const problem = this.#reader.push(chunk);
    if (problem !== undefined) {
      // 1008 (policy violation) for every kind: the other side is told why in the reason text.
      this.close(1008, problem);
      this.#events?.protocolError(problem);
    }
  }

  #writeControl(opcode: number, payload: Buffer): void {
    if (!this.#open || this.#socket.destroyed) return;
    this.#socket.write(wsFrame(opcode, payload, this.#masks));
  }
}
