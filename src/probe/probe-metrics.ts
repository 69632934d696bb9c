import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The prober's metrics, registered on the registry it exports. */
export class ProbeMetrics {
  readonly success: Gauge;
  readonly rtt: Histogram;
  readonly sent: Counter;
  readonly lost: Counter;
  readonly reconnects: Counter<'client'>;
  readonly peerReconnectNotice: Histogram;
  readonly peerReconnectNoticeMissed: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.success = new Gauge({
      name: 'relay_probe_success',
      help: '1 when the last probe packet made the round trip through the relay, else 0',
      registers,
    });
    this.rtt = new Histogram({
      name: 'relay_probe_rtt_seconds',
      help: 'Round-trip time of probe packets: client A to B and back, both through the relay',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.sent = new Counter({ name: 'relay_probe_sent_total', help: 'Probe packets sent', registers });
    this.lost = new Counter({
      name: 'relay_probe_lost_total',
      help: 'Probe packets with no answer within the loss timeout',
      registers,
    });
    this.reconnects = new Counter({
      name: 'relay_probe_reconnects_total',
      help: 'Reconnects of a probe client after the relay dropped its session',
      labelNames: ['client'],
      registers,
    });
    this.peerReconnectNotice = new Histogram({
      name: 'relay_probe_peer_reconnect_notice_seconds',
      help: "Time from one probe client's deliberate reconnect until the other was told offline and then online",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.peerReconnectNoticeMissed = new Counter({
      name: 'relay_probe_peer_reconnect_notice_missed_total',
      help: 'Deliberate reconnects the other probe client was never told about (stale connection left open)',
      registers,
    });
  }
}
