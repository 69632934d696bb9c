import { Counter, Gauge, type Registry } from 'prom-client';

/** Metrics of the Kubernetes integration (watches, discovery, leader election, rebalancing). */
export class KubernetesMetrics {
  readonly watchUp: Gauge<'resource'>;
  readonly watchRelists: Counter<'resource' | 'reason'>;
  readonly watchEvents: Counter<'resource' | 'type'>;
  readonly watchFailures: Counter<'resource'>;
  readonly siblings: Gauge<'state'>;
  readonly podDeletions: Counter;
  readonly leader: Gauge;
  readonly leadershipChanges: Counter<'event'>;
  readonly leaseErrors: Counter<'operation'>;
  readonly rebalanceRounds: Counter<'outcome'>;
  readonly rebalanceShedPeers: Counter;
  readonly rebalanceImbalance: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.watchUp = new Gauge({
      name: 'relay_k8s_watch_up',
      help: '1 while the Kubernetes watch is synced, 0 while it has failed for longer than its recovery window',
      labelNames: ['resource'],
      registers,
    });
    this.watchRelists = new Counter({
      name: 'relay_k8s_watch_relists_total',
      help: 'Full lists of a watched resource, by reason (start, expired, error, watchdog)',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.watchEvents = new Counter({
      name: 'relay_k8s_watch_events_total',
      help: 'Watch events applied, by type',
      labelNames: ['resource', 'type'],
      registers,
    });
    this.watchFailures = new Counter({
      name: 'relay_k8s_watch_failures_total',
      help: 'Failed list or watch requests',
      labelNames: ['resource'],
      registers,
    });
    this.siblings = new Gauge({
      name: 'relay_k8s_siblings',
      help: 'Other relay pods found in the headless Service EndpointSlices, by state',
      labelNames: ['state'],
      registers,
    });
    this.podDeletions = new Counter({
      name: 'relay_k8s_pod_deletions_total',
      help: 'Deleted relay pods reported to the cluster layer for reaping',
      registers,
    });
    this.leader = new Gauge({
      name: 'relay_k8s_leader',
      help: '1 while this pod holds the leader Lease',
      registers,
    });
    this.leadershipChanges = new Counter({
      name: 'relay_k8s_leadership_changes_total',
      help: 'Leadership of this pod acquired or lost',
      labelNames: ['event'],
      registers,
    });
    this.leaseErrors = new Counter({
      name: 'relay_k8s_lease_errors_total',
      help: 'Failed Lease requests (conflicts included), by operation',
      labelNames: ['operation'],
      registers,
    });
    this.rebalanceRounds = new Counter({
      name: 'relay_rebalance_rounds_total',
      help: 'Rebalancing rounds run by the leader, by outcome (balanced, shed, error)',
      labelNames: ['outcome'],
      registers,
    });
    this.rebalanceShedPeers = new Counter({
      name: 'relay_rebalance_shed_requested_total',
      help: 'Peers the leader asked overloaded pods to shed',
      registers,
    });
    this.rebalanceImbalance = new Gauge({
      name: 'relay_rebalance_imbalance_ratio',
      help: 'Peers on the busiest pod divided by the mean, as last seen by the leader',
      registers,
    });
  }
}
