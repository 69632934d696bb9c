import { Counter, Gauge, type Registry } from 'prom-client';
import { MESH_FORWARD_DROP_REASONS, type MeshForwardDropReason } from './mesh-drop-reason.js';

/**
 * Mesh traffic counted as plain numbers and read at scrape time: a frame
 * costs a few additions, not three labelled counter updates (prom-client
 * hashes the labels on every inc).
 */
export class MeshTraffic {
  framesIn = 0;
  framesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
}

/** Sets a direction-labelled counter from two totals, both shown from the first scrape on (at 0 before any traffic): rate() needs a sample before the first message. */
function collectDirections(counter: Counter<'direction'>, inTotal: number, outTotal: number): void {
  counter.reset();
  counter.inc({ direction: 'in' }, inTotal);
  counter.inc({ direction: 'out' }, outTotal);
}

/** Metrics of the mesh (pod-to-pod forwarding) and of membership/reaping. */
export class ClusterMetrics {
  readonly traffic = new MeshTraffic();
  readonly linksUp: Gauge;
  readonly #forwardDrops: Counter<'reason'>;
  readonly notHere: Counter<'direction'>;
  readonly authFailures: Counter<'reason'>;
  readonly protocolErrors: Counter<'reason'>;
  readonly linkConnects: Counter<'direction'>;
  readonly shedRequests: Counter<'direction'>;
  readonly members: Gauge;
  readonly heartbeatFailures: Counter;
  readonly reapedInstances: Counter<'cause'>;
  readonly reapedSessions: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    const traffic = this.traffic;
    this.linksUp = new Gauge({
      name: 'relay_mesh_links_up',
      help: 'Mesh links to other instances that are connected',
      registers,
    });
    new Counter({
      name: 'relay_mesh_forwarded_messages_total',
      help: 'Transport messages forwarded over the mesh (out: to other instances, in: from them)',
      labelNames: ['direction'],
      registers,
      collect() {
        collectDirections(this, traffic.messagesIn, traffic.messagesOut);
      },
    });
    new Counter({
      name: 'relay_mesh_forwarded_bytes_total',
      help: 'Bytes of transport messages forwarded over the mesh',
      labelNames: ['direction'],
      registers,
      collect() {
        collectDirections(this, traffic.bytesIn, traffic.bytesOut);
      },
    });
    new Counter({
      name: 'relay_mesh_frames_total',
      help: 'Mesh WebSocket frames (each a batch of records)',
      labelNames: ['direction'],
      registers,
      collect() {
        collectDirections(this, traffic.framesIn, traffic.framesOut);
      },
    });
    this.#forwardDrops = new Counter({
      name: 'relay_mesh_forward_drops_total',
      help: 'Transport messages for another instance that were dropped, by reason',
      labelNames: ['reason'],
      registers,
    });
    // Drops are rare: a series born at the first one gives rate() nothing to compare it with.
    for (const reason of MESH_FORWARD_DROP_REASONS) this.#forwardDrops.labels(reason).inc(0);
    this.notHere = new Counter({
      name: 'relay_mesh_not_here_total',
      help: '"Not here" answers (sent: a forwarded destination was not on this instance; received: a stale route)',
      labelNames: ['direction'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'relay_mesh_auth_failures_total',
      help: 'Refused mesh connections, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.protocolErrors = new Counter({
      name: 'relay_mesh_protocol_errors_total',
      help: 'Mesh links closed because of malformed input, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.linkConnects = new Counter({
      name: 'relay_mesh_link_connects_total',
      help: 'Mesh links established (dialled: by this instance, accepted: by the other side)',
      labelNames: ['direction'],
      registers,
    });
    this.shedRequests = new Counter({
      name: 'relay_mesh_shed_requests_total',
      help: 'Rebalancing requests to shed peers (sent: by the leader to another instance; received: by this one)',
      labelNames: ['direction'],
      registers,
    });
    this.members = new Gauge({
      name: 'relay_cluster_members',
      help: 'Live instances seen in Redis',
      registers,
    });
    this.heartbeatFailures = new Counter({
      name: 'relay_cluster_heartbeat_failures_total',
      help: 'Heartbeats that could not be written to Redis',
      registers,
    });
    this.reapedInstances = new Counter({
      name: 'relay_cluster_reaped_instances_total',
      help: 'Dead instances whose sessions this instance removed, by cause',
      labelNames: ['cause'],
      registers,
    });
    this.reapedSessions = new Counter({
      name: 'relay_cluster_reaped_sessions_total',
      help: 'Sessions of dead instances removed by this instance (each announced offline)',
      registers,
    });
  }

  countForwardDrops(reason: MeshForwardDropReason, messages = 1): void {
    this.#forwardDrops.labels(reason).inc(messages);
  }
}
