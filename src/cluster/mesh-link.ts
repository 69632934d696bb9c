import { LastPeerKey } from '../protocol/last-peer-key.js';
import type { PeerKey } from '../protocol/peer-id.js';
import type { MeshLinkContext } from './mesh-link-options.js';
import type { MeshSocket } from './mesh-socket.js';
import type { MeshDial } from './mesh-upgrade.js';
import { dialMeshLink } from './mesh-link-dial.js';
import { WS_MAX_HEADER_SIZE } from '../net/ws-frame.js';
import { PeerIdBytesCache } from './peer-id-bytes-cache.js';
import { MeshFrameBuffers } from './mesh-frame-buffers.js';
import { MAX_MESSAGE_SIZE, PEER_ID_SIZE } from '../protocol/constants.js';
import {
  NOT_HERE_RECORD_SIZE,
  RECORD_HEADER_SIZE,
  readMeshFrame,
  SHED_RECORD_SIZE,
  writeNotHereRecord,
  writeShedRecord,
  writeTransportRecord,
  type MeshFrameVisitor,
  type MeshShedRequest,
} from './mesh-frame.js';
import { MeshFairQueue } from './mesh-fair-queue.js';
import { backoffDelayMs } from '../time/backoff.js';
import type { TimerHandle } from '../time/clock.js';

/** How long the higher id waits for the lower one to dial before dialling itself. */
const FALLBACK_DIAL_DELAY_MS = 250;

/** Bytes a flow may put into a frame each round-robin turn. */
const FLOW_QUANTUM_BYTES = 8 * 1024;
const PER_RECORD = RECORD_HEADER_SIZE + PEER_ID_SIZE;

/**
 * The one link between this instance and another; either side sends on it.
 * The instance with the lower id dials as soon as it knows the other. The
 * higher one dials only when it has traffic waiting and no link (it may know
 * the lower one before the lower one knows it); if both links come up, both
 * sides keep the one the lower id dialled, so a pair settles on one link.
 * Messages are written in batches: one WebSocket frame carries every record
 * waiting at flush time. While nothing waits in the fair queue (below
 * saturation) a message is copied straight into the frame being filled; once
 * frames back up, messages wait in the queue (bounded, fair per destination)
 * and later frames are cut from it by round robin.
 */
export class MeshLink {
  readonly remoteInstance: string;
  readonly createdAt: number;
  /** Whether this instance is the one that dials (lower instance id). */
  readonly dials: boolean;
  /** Whether the current socket was dialled by the lower id (the one both sides keep). */
  #socketPreferred = false;
  wasMember = false;
  /** Since when the member list no longer names the other instance. */
  missingSince: number | undefined;
  readonly #context: MeshLinkContext;
  readonly #queue: MeshFairQueue;
  /** Scratch lists a frame is built from (reused: nothing allocated per message). */
  readonly #takenIds: Buffer[] = [];
  readonly #takenMessages: Buffer[] = [];
  readonly #frames: MeshFrameBuffers;
  readonly #peerIds = new PeerIdBytesCache();
  readonly #notHere = new Set<PeerKey>();
  /** A shed request waiting for the next frame (a newer one replaces it). */
  #shed: MeshShedRequest | undefined;
  readonly #visitor: MeshFrameVisitor;
  // One slot per destination flow a frame interleaves (its round robin visits many peers in turn).
  readonly #destinations = new LastPeerKey(64);
  #address: string | undefined;
  #socket: MeshSocket | undefined;
  #dialing: MeshDial | undefined;
  #inFlight = 0;
  #flushScheduled = false;
  #attempt = 0;
  #redialTimer: TimerHandle | undefined;
  #keepaliveTimer: TimerHandle | undefined;
  #heard = false;
  #closed = false;
  #received = 0;
  #receivedBytes = 0;

  constructor(context: MeshLinkContext, remoteInstance: string, address: string | undefined) {
    this.#context = context;
    this.createdAt = context.clock.now();
    this.remoteInstance = remoteInstance;
    this.#address = address;
    this.dials = context.localInstance < remoteInstance;
    // A batch stops at frameBytes but its last record may overshoot by one message.
    this.#frames = new MeshFrameBuffers(
      WS_MAX_HEADER_SIZE + context.limits.frameBytes + PER_RECORD + MAX_MESSAGE_SIZE,
      context.limits.framesInFlight,
    );
    this.#queue = new MeshFairQueue(
      context.limits.queueMessages,
      context.limits.queueBytes,
      FLOW_QUANTUM_BYTES,
    );
    this.#visitor = {
      transport: (peer, message) => {
        this.#received++;
        this.#receivedBytes += message.length;
        // One hop only: a message from the mesh is delivered here or answered "not here".
        if (!context.deliverLocal(peer, message)) this.sendNotHere(peer);
      },
      notHere: (peer) => {
        context.metrics.notHere.inc({ direction: 'received' });
        context.onNotHere(peer, remoteInstance);
      },
      shed: (request) => {
        context.metrics.shedRequests.inc({ direction: 'received' });
        context.onShedRequest(request, remoteInstance);
      },
    };
  }

  get isUp(): boolean {
    return this.#socket?.isOpen === true;
  }

  /** Messages not yet handed to the socket (the fair queue's and the open frame's). */
  get queued(): number {
    return this.#queue.length + this.#frames.openMessages;
  }

  /** Whether a dial is under way or scheduled: without one, no other socket can come up from this side. */
  get dialPending(): boolean {
    return this.#dialing !== undefined || this.#redialTimer !== undefined;
  }

  setAddress(address: string): void {
    const changed = address !== this.#address;
    this.#address = address;
    if (changed && this.#dialing) {
      this.#dialing.abort();
      this.#dialing = undefined;
      this.#scheduleRedial();
    }
    this.connect();
  }

  /** Dials if no link is up or being set up, and this side dials (or has traffic waiting). */
  connect(): void {
    if (this.#closed || this.#socket || this.#dialing || this.#redialTimer || !this.#address) return;
    if (this.dials) {
      this.#dial(this.#address);
    } else if (this.queued > 0) {
      // Give the lower id a moment to dial first, then dial ourselves.
      this.#redialTimer = this.#context.clock.setTimeout(() => {
        this.#redialTimer = undefined;
        if (!this.#socket && !this.#dialing && this.#address && this.queued > 0 && !this.#closed) {
          this.#dial(this.#address);
        }
      }, FALLBACK_DIAL_DELAY_MS);
    }
  }

  /** Queues a transport message; false only when the link is closed. */
  enqueue(peer: PeerKey, message: Buffer): boolean {
    if (this.#closed) {
      this.#context.metrics.countForwardDrops('link_closed');
      return false;
    }
    // The common case below saturation: nothing waits, so there is no order or share to keep.
    if (this.#queue.length === 0 && this.#socket?.isOpen === true && this.#copyIntoOpenFrame(peer, message))
      return true;
    const dropped = this.#queue.push(peer, message);
    if (dropped > 0) this.#context.metrics.countForwardDrops('flow_over_share', dropped);
    if (this.#socket) this.#scheduleFlush();
    else this.connect();
    return true;
  }

  /** Control record: never dropped in favour of data, deduplicated per batch. */
  sendNotHere(peer: PeerKey): void {
    this.#context.metrics.notHere.inc({ direction: 'sent' });
    this.#notHere.add(peer);
    this.#scheduleFlush();
  }

  /**
   * Control record asking the other instance to shed peers. Only sent on a link
   * that is up (false otherwise): a request must not fire long after its plan.
   */
  requestShed(request: MeshShedRequest): boolean {
    if (this.#closed || !this.isUp) return false;
    this.#context.metrics.shedRequests.inc({ direction: 'sent' });
    this.#shed = request;
    this.#scheduleFlush();
    return true;
  }

  /** Takes over an authenticated socket (dialled or accepted); a previous one is dropped. */
  attach(socket: MeshSocket, direction: 'dialled' | 'accepted'): void {
    if (this.#closed) {
      socket.close(1001, 'instance gone');
      return;
    }
    // Dialled by the lower id: from our side that is our own dial iff we are the lower id.
    const preferred = (direction === 'dialled') === this.dials;
    if (!preferred && this.#socketPreferred && this.#socket?.isOpen === true) {
      socket.close(1000, 'duplicate link');
      return;
    }
    const previous = this.#socket;
    this.#socket = socket;
    this.#socketPreferred = preferred;
    this.#inFlight = 0;
    this.#heard = true;
    previous?.terminate();
    this.#context.metrics.linkConnects.inc({ direction });
    this.#context.logger.info({ remote_instance: this.remoteInstance, direction }, 'mesh link up');
    const pool = this.#context.framePool;
    socket.start({
      message: (data, assembled) => this.#onFrame(socket, data, assembled),
      ...(pool ? { assemblyBuffer: (length: number) => pool.take(length) } : {}),
      heard: () => (this.#heard = true),
      protocolError: (reason) => this.#protocolError(socket, reason),
      closed: () => this.#onClose(socket),
    });
    const { clock, limits } = this.#context;
    clock.clearInterval(this.#keepaliveTimer);
    this.#keepaliveTimer = clock.setInterval(() => this.#keepalive(socket), limits.keepaliveIntervalMs);
    this.#context.onLinkStateChange();
    this.#scheduleFlush();
  }

  /** Stops for good (the other instance is gone, or we shut down); queued messages are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#context.clock.clearTimeout(this.#redialTimer);
    this.#context.clock.clearInterval(this.#keepaliveTimer);
    this.#dialing?.abort();
    this.#dialing = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close(1001, 'instance gone');
    const dropped = this.#queue.clear() + this.#frames.openMessages;
    this.#frames.discardOpen();
    if (dropped > 0) this.#context.metrics.countForwardDrops('instance_gone', dropped);
    if (socket) this.#context.onLinkStateChange();
  }

  /** Tests: cut the connection as a network failure would (no close handshake). */
  cut(): void {
    this.#socket?.terminate();
  }

  #dial(address: string): void {
    const dial = dialMeshLink(this.#context, this.remoteInstance, address, (socket) => {
      if (this.#dialing !== dial) {
        socket?.terminate();
        return;
      }
      this.#dialing = undefined;
      if (socket === undefined) return this.#scheduleRedial();
      this.#attempt = 0;
      this.attach(socket, 'dialled');
    });
    this.#dialing = dial;
  }

  #scheduleRedial(): void {
    if (this.#closed || this.#redialTimer || this.#socket) return;
    if (!this.dials && this.queued === 0) return;
    const { backoffBaseMs, backoffMaxMs } = this.#context.limits;
    // Half fixed, half random: spread the redials of many pods without ever redialling at once.
    const policy = {
      initialMs: backoffBaseMs,
      maxMs: backoffMaxMs,
      multiplier: 2,
      spread: [0.5, 1] as const,
    };
    const wait = backoffDelayMs(this.#attempt++, policy);
    this.#redialTimer = this.#context.clock.setTimeout(() => {
      this.#redialTimer = undefined;
      this.connect();
    }, wait);
  }

  #onClose(socket: MeshSocket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#context.clock.clearInterval(this.#keepaliveTimer);
    if (!this.#closed) this.#context.logger.warn({ remote_instance: this.remoteInstance }, 'mesh link down');
    this.#context.onLinkStateChange();
    this.#scheduleRedial();
  }

  #keepalive(socket: MeshSocket): void {
    if (!this.#heard) {
      this.#context.logger.warn({ remote_instance: this.remoteInstance }, 'mesh link silent; dropping it');
      socket.terminate();
      return;
    }
    this.#heard = false;
    socket.ping();
  }

  #onFrame(socket: MeshSocket, data: Buffer, assembled: boolean): void {
    // Reused only after this turn's writes (the views delivered below live until then).
    if (assembled) this.#context.framePool?.release(data);
    // Frames already on the wire when a close began are not handed over by the socket; this
    // guards a frame's own records: a link that sent malformed input delivers nothing more.
    if (!socket.isOpen) return;
    this.#received = 0;
    this.#receivedBytes = 0;
    const problem = readMeshFrame(data, this.#visitor, this.#destinations);
    if (problem) return this.#protocolError(socket, problem);
    const traffic = this.#context.metrics.traffic;
    traffic.framesIn++;
    traffic.messagesIn += this.#received;
    traffic.bytesIn += this.#receivedBytes;
  }

  #protocolError(socket: MeshSocket, reason: string): void {
    this.#context.metrics.protocolErrors.inc({ reason });
    this.#context.logger.warn(
      { remote_instance: this.remoteInstance, reason },
      'malformed mesh input; closing link',
    );
    socket.close(1008, reason);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || !this.#socket) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
  }

  /**
   * Appends a transport record to the open frame (opening one if needed);
   * false when it cannot take it now (full, and no frame may go out), so the
   * message waits in the fair queue instead.
   */
  #copyIntoOpenFrame(peer: PeerKey, message: Buffer): boolean {
    const { frameBytes, framesInFlight } = this.#context.limits;
    if (!this.#frames.fitsOpen(PER_RECORD + message.length, frameBytes)) {
      if (this.#inFlight >= framesInFlight) return false;
      this.#sendOpenFrame(this.#socket as MeshSocket);
    }
    if (this.#frames.append(this.#peerIds.get(peer), message)) this.#scheduleFlush();
    return true;
  }

  #sendOpenFrame(socket: MeshSocket): void {
    const frames = this.#frames;
    const traffic = this.#context.metrics.traffic;
    traffic.messagesOut += frames.openMessages;
    traffic.bytesOut += frames.openBytes;
    const end = frames.openEnd;
    this.#write(socket, frames.detachOpen(), end, true);
  }

  /** Hands a frame (records in `backing[WS_MAX_HEADER_SIZE, end)`) to the socket. */
  #write(socket: MeshSocket, backing: Buffer, end: number, reusable: boolean): void {
    this.#inFlight++;
    this.#context.metrics.traffic.framesOut++;
    socket.sendBinary(backing, WS_MAX_HEADER_SIZE, end, (err) => {
      // Frame buffers are reused once written: no 64 KiB allocation (and GC) per batch.
      if (reusable) this.#frames.release(backing);
      if (this.#socket !== socket) return;
      this.#inFlight--;
      if (!err) this.#scheduleFlush();
    });
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const socket = this.#socket;
    if (!socket?.isOpen) return;
    const { frameBytes, framesInFlight } = this.#context.limits;
    const traffic = this.#context.metrics.traffic;
    // The open frame holds the oldest messages (nothing was queued when they were copied).
    if (this.#frames.hasOpen && this.#inFlight < framesInFlight) this.#sendOpenFrame(socket);
    while (
      this.#inFlight < framesInFlight &&
      !this.#frames.hasOpen &&
      (this.#notHere.size > 0 || this.#queue.length > 0 || this.#shed !== undefined)
    ) {
      const control = this.#notHere.size * NOT_HERE_RECORD_SIZE + (this.#shed ? SHED_RECORD_SIZE : 0);
      const ids = this.#takenIds;
      const messages = this.#takenMessages;
      const count = this.#queue.take(frameBytes - control, PER_RECORD, ids, messages);
      let size = control + count * PER_RECORD;
      for (let i = 0; i < count; i++) size += (messages[i] as Buffer).length;
      const reusable = WS_MAX_HEADER_SIZE + size <= this.#frames.capacity;
      const backing = reusable ? this.#frames.acquire() : Buffer.allocUnsafe(WS_MAX_HEADER_SIZE + size);
      let offset = WS_MAX_HEADER_SIZE;
      if (this.#shed) offset = writeShedRecord(backing, offset, this.#shed);
      this.#shed = undefined;
      for (const peer of this.#notHere) offset = writeNotHereRecord(backing, offset, peer);
      this.#notHere.clear();
      const bytes = size - control - count * PER_RECORD;
      for (let i = 0; i < count; i++) {
        offset = writeTransportRecord(backing, offset, ids[i] as Buffer, messages[i] as Buffer);
        // Let the source buffer go as soon as it is copied.
        messages[i] = undefined as unknown as Buffer;
      }
      this.#write(socket, backing, offset, reusable);
      traffic.messagesOut += count;
      traffic.bytesOut += bytes;
    }
  };
}
