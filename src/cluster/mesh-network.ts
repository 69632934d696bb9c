import type { Logger } from 'pino';
import { MAX_MESSAGE_SIZE, PEER_ID_SIZE } from '../protocol/constants.js';
import type { PeerKey } from '../protocol/peer-id.js';
import type { RemoteDelivery } from '../relay/remote-delivery.js';
import type { ClusterMetrics } from './cluster-metrics.js';
import { FrameAssemblyPool, type WhenWritten } from './frame-assembly-pool.js';
import { RECORD_HEADER_SIZE, type MeshShedRequest } from './mesh-frame.js';
import { MeshLink } from './mesh-link.js';
import type { MeshSocket } from './mesh-socket.js';
import { DEFAULT_MESH_LIMITS, type MeshLinkContext, type MeshLimits } from './mesh-link-options.js';
import type { MemberInfo } from './membership.js';
import { backgroundClock, type Clock } from '../time/clock.js';

/** A link accepted from an instance we never saw in Redis is dropped after this long. */
const UNKNOWN_INSTANCE_GRACE_MS = 10_000;
/**
 * An instance missing from the member list is dropped only after this long: the
 * list is empty for a moment when Redis restarts, and links must survive that.
 */
const MISSING_MEMBER_GRACE_MS = 5_000;
/** Frame memory kept for reuse, shared by all links (16 × ~73 KiB). */
const IDLE_FRAME_BUFFERS = 16;

/**
 * All mesh links of this instance, one per other live instance; the relay's
 * RemoteDelivery. Membership (from the Redis heartbeats) says which instances
 * exist and where they listen.
 */
export class MeshNetwork implements RemoteDelivery {
  readonly #links = new Map<string, MeshLink>();
  readonly #context: MeshLinkContext;
  readonly #onUnknownInstance: () => void;
  #members: ReadonlyMap<string, MemberInfo> = new Map();
  /** Pods the Kubernetes headless Service listed at its last change (undefined outside Kubernetes). */
  #listedPods: ReadonlySet<string> | undefined;
  /** Pods that left the Service while Redis may still name their instances. */
  readonly #departedPods = new Set<string>();
  #closed = false;

  constructor(options: {
    localInstance: string;
    secret: string;
    deliverLocal: (peer: PeerKey, message: Buffer) => boolean;
    /**
     * The relay's "this turn's writes are out": with it, received frames that
     * span reads are assembled in reused memory (see FrameAssemblyPool).
     */
    whenDeliveriesWritten?: WhenWritten;
    onNotHere: (peer: PeerKey, instance: string) => void;
    onShedRequest: (request: MeshShedRequest, fromInstance: string) => void;
    metrics: ClusterMetrics;
    logger: Logger;
    limits?: Partial<MeshLimits>;
    /** Redials, keepalives and grace periods run on this clock. */
    clock?: Clock;
    /** A route names an instance the member list does not know (yet): refresh it. */
    onUnknownInstance?: () => void;
  }) {
    this.#onUnknownInstance = options.onUnknownInstance ?? (() => {});
    const limits = { ...DEFAULT_MESH_LIMITS, ...options.limits };
    // Our frames stop growing at frameBytes, past which one record may reach.
    const largestFrame = limits.frameBytes + RECORD_HEADER_SIZE + PEER_ID_SIZE + MAX_MESSAGE_SIZE;
    const whenWritten = options.whenDeliveriesWritten;
    this.#context = {
      localInstance: options.localInstance,
      secret: options.secret,
      deliverLocal: options.deliverLocal,
      ...(whenWritten
        ? {
            framePool: new FrameAssemblyPool({
              bufferSize: largestFrame,
              maxIdle: IDLE_FRAME_BUFFERS,
              whenWritten,
            }),
          }
        : {}),
      onNotHere: options.onNotHere,
      onShedRequest: options.onShedRequest,
      onLinkStateChange: () => options.metrics.linksUp.set(this.linksUp),
      metrics: options.metrics,
      logger: options.logger,
      limits,
      clock: options.clock ?? backgroundClock,
    };
  }

  forward(instance: string, peer: PeerKey, message: Buffer): boolean {
    let link = this.#links.get(instance);
    if (!link) {
      if (this.#closed || instance === this.#context.localInstance) {
        this.#context.metrics.countForwardDrops('unknown_instance');
        return false;
      }
      // A route can name an instance our member list has not caught up with: queue
      // on a link without an address and ask for the list now.
      const member = this.#members.get(instance);
      if (member && this.#departedPods.has(member.podName)) {
        this.#context.metrics.countForwardDrops('instance_gone');
        return false;
      }
      link = this.#addLink(instance, member?.meshAddress);
      link.wasMember = member !== undefined;
      if (!member) this.#onUnknownInstance();
    }
    return link.enqueue(peer, message);
  }

  /** An instance was reaped (dead for sure): drop its link and queue now. */
  forget(instance: string): void {
    this.#links.get(instance)?.close();
    this.#links.delete(instance);
  }

  /**
   * Asks `instance` to shed peers (the rebalancing leader's request). Throws
   * when no link to it is up: the leader retries on its next round.
   */
  requestShed(instance: string, request: MeshShedRequest): void {
    if (!this.#links.get(instance)?.requestShed(request)) {
      throw new Error(`no mesh link up to instance ${instance}`);
    }
  }

  /**
   * The pods Kubernetes lists in the headless Service. A pod that leaves it is
   * gone (the Service publishes not-ready and terminating pods too): its links
   * close now rather than after heartbeat expiry plus the missing-member grace,
   * and heartbeats that still name it do not redial it unless it is listed again.
   */
  updateSiblingPods(pods: ReadonlySet<string>): void {
    if (this.#closed) return;
    for (const pod of this.#listedPods ?? []) if (!pods.has(pod)) this.#departedPods.add(pod);
    for (const pod of pods) this.#departedPods.delete(pod);
    this.#listedPods = pods;
    for (const [instance, member] of this.#members) {
      if (this.#departedPods.has(member.podName)) this.forget(instance);
    }
  }

  /** Called with every heartbeat's view of the live instances. */
  updateMembers(members: ReadonlyMap<string, MemberInfo>): void {
    if (this.#closed) return;
    this.#members = members;
    const podsNamed = new Set<string>();
    for (const [instance, member] of members) {
      podsNamed.add(member.podName);
      if (instance === this.#context.localInstance || this.#departedPods.has(member.podName)) continue;
      let link = this.#links.get(instance);
      // The dialling side sets links up at once, so the first forwarded packet does not wait.
      if (!link) link = this.#addLink(instance, member.meshAddress);
      link.wasMember = true;
      link.setAddress(member.meshAddress);
    }
    const now = this.#context.clock.now();
    for (const [instance, link] of this.#links) {
      if (members.has(instance)) {
        link.missingSince = undefined;
        continue;
      }
      link.missingSince ??= now;
      const missingFor = now - link.missingSince;
      if (
        missingFor > MISSING_MEMBER_GRACE_MS ||
        (!link.wasMember && now - link.createdAt > UNKNOWN_INSTANCE_GRACE_MS)
      ) {
        link.close();
        this.#links.delete(instance);
      }
    }
    // Forget departed pods once Redis no longer names them (bounded by the member list).
    for (const pod of this.#departedPods) if (!podsNamed.has(pod)) this.#departedPods.delete(pod);
  }

  /** An authenticated inbound link from `instance`. */
  accept(socket: MeshSocket, instance: string): void {
    if (this.#closed) {
      socket.close(1001, 'shutting down');
      return;
    }
    const member = this.#members.get(instance);
    if (member && this.#departedPods.has(member.podName)) {
      socket.close(1001, 'pod left the service');
      return;
    }
    const link = this.#links.get(instance) ?? this.#addLink(instance, member?.meshAddress);
    link.attach(socket, 'accepted');
  }

  get linksUp(): number {
    let up = 0;
    for (const link of this.#links.values()) if (link.isUp) up++;
    return up;
  }

  /** The link to `instance`, if any (tests and diagnostics). */
  link(instance: string): MeshLink | undefined {
    return this.#links.get(instance);
  }

  close(): void {
    this.#closed = true;
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    this.#context.metrics.linksUp.set(0);
  }

  #addLink(instance: string, address: string | undefined): MeshLink {
    const link = new MeshLink(this.#context, instance, address);
    this.#links.set(instance, link);
    return link;
  }
}
