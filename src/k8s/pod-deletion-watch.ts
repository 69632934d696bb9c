import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubernetesMetrics } from './k8s-metrics.js';
import { WatchBacked } from './watch-backed.js';
import { ResilientWatch, type WatchTiming } from './resilient-watch.js';

export interface PodDeletionWatchOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Selects the relay's pods (e.g. app.kubernetes.io/name=x,app.kubernetes.io/instance=y); all pods if empty. */
  labelSelector?: string;
  selfPodName: string;
  /** A relay pod is gone from the API (not merely terminating): its registrations can be reaped at once. */
  onPodDeleted: (podName: string) => void;
  logger: Logger;
  metrics: KubernetesMetrics;
  timing?: Partial<WatchTiming>;
}

/**
 * Reports relay pods the moment they are deleted from the API. A pod that is
 * only terminating (deletionTimestamp set) is still draining and is not
 * reported. Deletions missed while the watch was down show up on the relist.
 */
export class PodDeletionWatch extends WatchBacked<V1Pod> {
  protected readonly watch: ResilientWatch<V1Pod>;

  constructor(options: PodDeletionWatchOptions) {
    super();
    const log = options.logger.child({ component: 'k8s-pods' });
    const api = options.kubeConfig.makeApiClient(CoreV1Api);
    const labelSelector = options.labelSelector || undefined;
    this.watch = new ResilientWatch<V1Pod>({
      resource: 'pods',
      kubeConfig: options.kubeConfig,
      path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods`,
      ...(labelSelector ? { labelSelector } : {}),
      list: () =>
        api.listNamespacedPod({ namespace: options.namespace, ...(labelSelector ? { labelSelector } : {}) }),
      onEvent: (type, pod) => {
        const name = pod.metadata?.name;
        if (type !== 'DELETED' || !name || name === options.selfPodName) return;
        options.metrics.podDeletions.inc();
        log.info({ pod: name }, 'relay pod deleted');
        try {
          options.onPodDeleted(name);
        } catch (err) {
          log.error({ err, pod: name }, 'onPodDeleted failed');
        }
      },
      logger: options.logger,
      metrics: options.metrics,
      ...(options.timing ? { timing: options.timing } : {}),
    });
  }
}
