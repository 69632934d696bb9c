import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the shared registry reports (see DESIGN.md, Observability). */
export class RedisRegistryMetrics {
  readonly operationSeconds: Histogram<'operation' | 'outcome'>;
  readonly eventLagSeconds: Histogram;
  readonly staleEventsDropped: Counter;
  readonly staleCleanupsIgnored: Counter;
  readonly resyncs: Counter<'reason'>;
  readonly restoredSessions: Counter;
  readonly orphansRemoved: Counter;
  readonly redisUp: Gauge;
  readonly subscriptionUp: Gauge;
  readonly localPeers: Gauge;
  readonly routes: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.operationSeconds = new Histogram({
      name: 'relay_registry_operation_duration_seconds',
      help: 'Latency of registry operations against Redis',
      labelNames: ['operation', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.eventLagSeconds = new Histogram({
      name: 'relay_registry_event_lag_seconds',
      help: 'Time from a peer event being published in Redis to this instance applying it',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.staleEventsDropped = new Counter({
      name: 'relay_registry_stale_events_dropped_total',
      help: 'Peer events dropped because a newer token was already applied for that peer',
      registers,
    });
    this.staleCleanupsIgnored = new Counter({
      name: 'relay_registry_stale_cleanups_ignored_total',
      help: 'Unregisters that were no-ops because a newer session had replaced the one being removed',
      registers,
    });
    this.resyncs = new Counter({
      name: 'relay_registry_resyncs_total',
      help: 'Full reloads of the registry into the route cache, by cause',
      labelNames: ['reason'],
      registers,
    });
    this.restoredSessions = new Counter({
      name: 'relay_registry_restored_sessions_total',
      help: 'Local sessions registered again after Redis lost them',
      registers,
    });
    this.orphansRemoved = new Counter({
      name: 'relay_registry_orphans_removed_total',
      help: 'Registrations of this instance found in Redis without a local session, removed',
      registers,
    });
    this.redisUp = new Gauge({
      name: 'relay_cluster_redis_up',
      help: '1 while the Redis command connection is ready',
      registers,
    });
    this.subscriptionUp = new Gauge({
      name: 'relay_registry_event_subscription_up',
      help: '1 while the peer event subscription is active',
      registers,
    });
    this.localPeers = new Gauge({
      name: 'relay_cluster_instance_peers',
      help: 'Peers registered by this instance',
      registers,
    });
    this.routes = new Gauge({
      name: 'relay_registry_routes',
      help: 'Peers in the route cache (the whole cluster)',
      registers,
    });
  }
}
