import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SESSION_CLOSE_REASONS, type MessageDropReason } from './relay-vocabulary.js';

/** Seconds without transport traffic after which a peer counts as idle (NetBird uses the same split). */
export const IDLE_AFTER_MS = 60_000;

/**
 * Counters on the data path are plain numbers, read at scrape time, so a
 * packet costs an addition rather than a label lookup.
 */
export class RelayStats {
  receivedBytes = 0;
  sentBytes = 0;
  readonly drops: Record<MessageDropReason, number> = {
    queue_full: 0,
    session_closed: 0,
    unknown_peer: 0,
    not_routable: 0,
  };
}

export interface PeerActivitySource {
  /** Calls `visit` with each connected peer's last transport activity (ms since epoch). */
  forEachPeerActivity(visit: (lastActivityMs: number) => void): void;
}

export class RelayMetrics {
  readonly stats = new RelayStats();
  readonly reconnections: Counter;
  readonly authenticationTime: Histogram;
  readonly storeTime: Histogram;
  readonly handshakeFailures: Counter<'reason'>;
  readonly sessionCloses: Counter<'reason'>;
  readonly httpRefusals: Counter<'listener' | 'reason'>;
  readonly abuseRefusals: Counter<'reason'>;
  readonly peerStateNotices: Counter<'kind'>;
  readonly stunRequests: Counter;
  readonly stunMalformed: Counter<'reason'>;
  readonly tlsReloadChecks: Counter<'result'>;
  #activity: PeerActivitySource | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const stats = this.stats;
    const countPeers = (active?: boolean): number => this.#countPeers(active);
    new Gauge({
      name: 'relay_peers',
      help: 'Peers connected to this relay instance',
      registers,
      collect() {
        this.set(countPeers());
      },
    });
    new Gauge({
      name: 'relay_peers_active',
      help: 'Connected peers that relayed transport traffic within the last minute',
      registers,
      collect() {
        this.set(countPeers(true));
      },
    });
    new Gauge({
      name: 'relay_peers_idle',
      help: 'Connected peers without transport traffic in the last minute',
      registers,
      collect() {
        this.set(countPeers(false));
      },
    });
    new Counter({
      name: 'relay_transfer_sent_bytes_total',
      help: 'Bytes of relay messages written to peers',
      registers,
      collect() {
        this.reset();
        this.inc(stats.sentBytes);
      },
    });
    new Counter({
      name: 'relay_transfer_received_bytes_total',
      help: 'Bytes of relay messages received from peers',
      registers,
      collect() {
        this.reset();
        this.inc(stats.receivedBytes);
      },
    });
    this.reconnections = new Counter({
      name: 'relay_peer_reconnections_total',
      help: 'Connections of a peer ID that was already connected (the older session is replaced)',
      registers,
    });
    const latencyBuckets = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
    this.authenticationTime = new Histogram({
      name: 'relay_peer_authentication_time_milliseconds',
      help: 'Time from connection open to a completed handshake',
      buckets: latencyBuckets,
      registers,
    });
    this.storeTime = new Histogram({
      name: 'relay_peer_store_time_milliseconds',
      help: 'Time to register a peer in the peer registry',
      buckets: [0.1, 0.5, ...latencyBuckets],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: 'relay_handshake_failures_total',
      help: 'Connections refused before authentication completed, by reason',
      labelNames: ['reason'],
      registers,
    });
    new Counter({
      name: 'relay_dropped_messages_total',
      help: 'Transport messages not delivered, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, count] of Object.entries(stats.drops)) this.labels(reason).inc(count);
      },
    });
    this.sessionCloses = new Counter({
      name: 'relay_session_closes_total',
      help: 'Authenticated sessions ended, by reason',
      labelNames: ['reason'],
      registers,
    });
    // A series born at its first close has no earlier sample, so rate() over the
    // burst of closes a rebalance or a drain makes returns nothing.
    for (const reason of SESSION_CLOSE_REASONS) this.sessionCloses.labels(reason).inc(0);
    this.httpRefusals = new Counter({
      name: 'relay_http_connections_refused_total',
      help: 'Connections closed by an HTTP listener limit, by listener and reason',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.abuseRefusals = new Counter({
      name: 'relay_abuse_refusals_total',
      help: 'Connections refused by a per-IP limit, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.peerStateNotices = new Counter({
      name: 'relay_peer_state_notices_total',
      help: 'Peer state messages sent to subscribers',
      labelNames: ['kind'],
      registers,
    });
    this.stunRequests = new Counter({
      name: 'relay_stun_requests_total',
      help: 'STUN binding requests answered',
      registers,
    });
    this.stunMalformed = new Counter({
      name: 'relay_stun_malformed_total',
      help: 'STUN datagrams ignored, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.tlsReloadChecks = new Counter({
      name: 'relay_tls_reload_checks_total',
      help: 'Polls of the TLS certificate and key files, by result (unchanged, reloaded, refused, unreadable)',
      labelNames: ['result'],
      registers,
    });
  }

  attachActivitySource(source: PeerActivitySource): void {
    this.#activity = source;
  }

  /** Active, idle, or (undefined) all peers. */
  #countPeers(active?: boolean): number {
    const since = Date.now() - IDLE_AFTER_MS;
    let count = 0;
    this.#activity?.forEachPeerActivity((last) => {
      if (active === undefined || last >= since === active) count++;
    });
    return count;
  }
}
