import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ClusterInstance } from './cluster/cluster-instance.js';
import type { KubernetesSettings } from './k8s/k8s-settings.js';
import { inClusterKubeConfig } from './k8s/kube-config.js';
import { startKubernetes, type KubernetesIntegration } from './k8s/kubernetes.js';
import type { Relay } from './relay/relay.js';

export interface ClusterOnKubernetesOptions {
  settings: KubernetesSettings;
  cluster: ClusterInstance;
  relay: Relay;
  logger: Logger;
  metrics: Registry;
}

/**
 * Connects the Kubernetes integration to a cluster instance (loaded only in a
 * cluster running on Kubernetes): the headless Service's pods steer the mesh,
 * a deleted pod is reaped at once, and the leader's rebalancing reads peers
 * per instance from Redis and sends its shed requests over the mesh.
 */
export function startClusterOnK8s(options: ClusterOnKubernetesOptions): Promise<KubernetesIntegration> {
  const { settings, cluster, relay, logger } = options;
  return startKubernetes({
    namespace: settings.namespace,
    podName: settings.podName,
    headlessService: settings.headlessService,
    meshPortName: settings.meshPortName,
    leaseName: settings.leaseName,
    ...(settings.podLabelSelector ? { podLabelSelector: settings.podLabelSelector } : {}),
    kubeConfig: inClusterKubeConfig(process.env, settings.serviceAccountDir),
    rebalance: settings.rebalance,
    logger,
    metrics: options.metrics,
    hooks: {
      onSiblings: (siblings) => {
        cluster.updateSiblingPods(new Set(siblings.map((s) => s.podName)));
      },
      onPodDeleted: (podName) => {
        cluster.reapPod(podName).catch((err: unknown) => {
          // The heartbeat expiry reaps it anyway, a little later.
          logger.warn({ err, pod: podName }, 'reaping a deleted pod failed');
        });
      },
      // The k8s layer leaves out pods out of rotation (see k8s/rotation.ts).
      getPeersByInstance: () => cluster.peersByInstance(),
      requestShed: async (instance, count, windowMs) => {
        if (instance === cluster.instanceId) {
          void relay.shed(count, windowMs);
          return;
        }
        cluster.requestShed(instance, { count, windowMs });
      },
    },
  });
}
