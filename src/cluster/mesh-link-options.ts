import type { Logger } from 'pino';
import type { PeerKey } from '../protocol/peer-id.js';
import type { Clock } from '../time/clock.js';
import type { ClusterMetrics } from './cluster-metrics.js';
import type { FrameAssemblyPool } from './frame-assembly-pool.js';
import type { MeshShedRequest } from './mesh-frame.js';

/** What every link of this instance shares. */
export interface MeshLinkContext {
  readonly localInstance: string;
  readonly secret: string;
  /** Hands a forwarded message to a local session; false when the peer is not here. */
  readonly deliverLocal: (peer: PeerKey, message: Buffer) => boolean;
  /** Memory for received frames that span reads; without it each gets a fresh buffer. */
  readonly framePool?: FrameAssemblyPool;
  /** The other instance said `peer` is not there: our route is stale. */
  readonly onNotHere: (peer: PeerKey, instance: string) => void;
  /** Another instance (the rebalancing leader) asks this one to shed peers. */
  readonly onShedRequest: (request: MeshShedRequest, fromInstance: string) => void;
  readonly onLinkStateChange: () => void;
  readonly metrics: ClusterMetrics;
  readonly logger: Logger;
  readonly limits: MeshLimits;
  readonly clock: Clock;
}

export interface MeshLimits {
  /**
   * Messages a link queues while it is down or busy. When full, the flow
   * (destination peer) holding more than its share loses its oldest.
   */
  queueMessages: number;
  queueBytes: number;
  /** A batch stops growing at this size (one record may overshoot it). */
  frameBytes: number;
  /** Frames handed to the socket but not yet written out. */
  framesInFlight: number;
  /** Largest WebSocket message accepted from another instance. */
  maxPayload: number;
  handshakeTimeoutMs: number;
  keepaliveIntervalMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_MESH_LIMITS: MeshLimits = {
  queueMessages: 8_192,
  queueBytes: 8 * 1024 * 1024,
  frameBytes: 64 * 1024,
  framesInFlight: 4,
  maxPayload: 256 * 1024,
  handshakeTimeoutMs: 5_000,
  keepaliveIntervalMs: 2_000,
  backoffBaseMs: 100,
  backoffMaxMs: 5_000,
};
