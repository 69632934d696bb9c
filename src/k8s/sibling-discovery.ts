import { DiscoveryV1Api, type KubeConfig, type V1EndpointSlice } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { formatHostPort } from '../net/host-port.js';
import type { KubernetesMetrics } from './k8s-metrics.js';
import { WatchBacked } from './watch-backed.js';
import { ResilientWatch, type WatchTiming } from './resilient-watch.js';

/** Another relay pod as its headless Service's EndpointSlices show it. */
export interface Sibling {
  podName: string;
  /** host:port of its mesh listener ([v6]:port for IPv6). */
  address: string;
  /** Serving and not terminating. A terminating pod stays listed while it drains. */
  ready: boolean;
}

export interface SiblingSelection {
  /** This pod: never listed. */
  selfPodName: string;
  /** Name of the mesh port in the Service; a slice with one unnamed port is used as is. */
  portName: string;
}

/**
 * Merges every slice of the Service into one list of sibling pods, sorted by
 * pod name. An endpoint's `serving` (falling back to `ready`, then to true when
 * unknown, as the API documents) decides `ready`; `terminating` makes it not
 * ready but keeps it listed, so mesh links to a draining pod stay up until its
 * endpoint is removed. A pod present in two slices (slices being rewritten)
 * is listed once, ready if either says so.
 */
export function siblingsFromSlices(
  slices: readonly V1EndpointSlice[],
  selection: SiblingSelection,
): Sibling[] {
  const byPod = new Map<string, Sibling>();
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const ports = slice.ports ?? [];
    const port =
      ports.find((p) => p.name === selection.portName) ??
      (ports.length === 1 && !ports[0]?.name ? ports[0] : undefined);
    if (!port?.port) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const ref = endpoint.targetRef;
      if (!ref?.name || (ref.kind && ref.kind !== 'Pod')) continue;
      if (ref.name === selection.selfPodName) continue;
      const ip = endpoint.addresses?.[0];
      if (!ip) continue;
      const conditions = endpoint.conditions ?? {};
      const serving = conditions.serving ?? conditions.ready ?? true;
      const ready = serving && conditions.terminating !== true;
      const address = formatHostPort(ip, port.port);
      const known = byPod.get(ref.name);
      if (!known || (!known.ready && ready)) byPod.set(ref.name, { podName: ref.name, address, ready });
    }
  }
  return [...byPod.values()].sort((a, b) => (a.podName < b.podName ? -1 : a.podName > b.podName ? 1 : 0));
}

export interface SiblingDiscoveryOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The headless Service whose slices list the mesh endpoints. */
  service: string;
  selection: SiblingSelection;
  onSiblings: (siblings: Sibling[]) => void;
  logger: Logger;
  metrics: KubernetesMetrics;
  timing?: Partial<WatchTiming>;
}

/** Watches the headless Service's EndpointSlices and reports the sibling list whenever it changes. */
export class SiblingDiscovery extends WatchBacked<V1EndpointSlice> {
  private readonly options: SiblingDiscoveryOptions;
  protected readonly watch: ResilientWatch<V1EndpointSlice>;
  private readonly log: Logger;
  private last = '';
  private current: Sibling[] = [];

  constructor(options: SiblingDiscoveryOptions) {
    super();
    this.options = options;
    this.log = options.logger.child({ component: 'k8s-discovery' });
    const api = options.kubeConfig.makeApiClient(DiscoveryV1Api);
    const labelSelector = `kubernetes.io/service-name=${options.service}`;
    this.watch = new ResilientWatch<V1EndpointSlice>({
      resource: 'endpointslices',
      kubeConfig: options.kubeConfig,
      path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/endpointslices`,
      labelSelector,
      list: () => api.listNamespacedEndpointSlice({ namespace: options.namespace, labelSelector }),
      onEvent: () => undefined,
      onChange: () => this.recompute(),
      logger: options.logger,
      metrics: options.metrics,
      ...(options.timing ? { timing: options.timing } : {}),
    });
  }

  siblings(): Sibling[] {
    return this.current;
  }

  private recompute(): void {
    const siblings = siblingsFromSlices(this.watch.snapshot(), this.options.selection);
    const key = JSON.stringify(siblings);
    if (key === this.last) return;
    this.last = key;
    this.current = siblings;
    const ready = siblings.filter((s) => s.ready).length;
    this.options.metrics.siblings.labels('ready').set(ready);
    this.options.metrics.siblings.labels('not_ready').set(siblings.length - ready);
    this.log.info(
      { siblings: siblings.map((s) => `${s.podName}@${s.address}${s.ready ? '' : ' (not ready)'}`) },
      'siblings changed',
    );
    try {
      this.options.onSiblings(siblings);
    } catch (err) {
      this.log.error({ err }, 'onSiblings failed');
    }
  }
}
