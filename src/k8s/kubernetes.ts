import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { beforeDeadline, settledWithin } from '../time/deadline.js';
import { inClusterKubeConfig } from './kube-config.js';
import { KubernetesMetrics } from './k8s-metrics.js';
import { LeaseElection, type LeaseTiming } from './lease-election.js';
import { PodDeletionWatch } from './pod-deletion-watch.js';
import type { RebalanceOptions } from './rebalance-policy.js';
import { Rebalancer, type RebalancerTiming } from './rebalancer.js';
import type { Clock } from '../time/clock.js';
import type { WatchTiming } from './resilient-watch.js';
import { loadInRotation, type InstanceLoad } from './rotation.js';
import { SiblingDiscovery, type Sibling } from './sibling-discovery.js';

export interface KubernetesHooks {
  /** The full list of other relay pods, each time it changes (dial new ones, drop vanished ones). */
  onSiblings(addresses: Sibling[]): void;
  /** A relay pod was deleted from the API: reap its registrations now. */
  onPodDeleted(podName: string): void;
  /** Leader only: peers per live instance with its pod (instances with zero peers included). */
  getPeersByInstance(): Promise<InstanceLoad[]>;
  /** Leader only: ask an instance to close `count` of its peers spread over `windowMs`. */
  requestShed(instance: string, count: number, windowMs: number): Promise<void>;
}

export interface KubernetesOptions {
  namespace: string;
  podName: string;
  /** Headless Service over the mesh port; its EndpointSlices list the sibling pods. */
  headlessService: string;
  leaseName: string;
  logger: Logger;
  metrics: Registry;
  hooks: KubernetesHooks;
  /** Name of the mesh port in the headless Service (default "mesh"). */
  meshPortName?: string;
  /** Label selector of the relay's pods for the deletion watch (default: this pod's name/instance labels). */
  podLabelSelector?: string;
  /** Default: in-cluster configuration with a rotating service-account token. */
  kubeConfig?: KubeConfig;
  /** Lease holder identity (default: pod name + random suffix, new on every start). */
  identity?: string;
  rebalance?: {
    enabled?: boolean;
    policy?: Partial<RebalanceOptions>;
    timing?: Partial<RebalancerTiming>;
    /** Tests: step the rebalancing rounds by hand. */
    clock?: Clock;
  };
  watchTiming?: Partial<WatchTiming>;
  leaseTiming?: Partial<LeaseTiming>;
  /** How long start waits for the first lists before returning anyway (default 5 s). */
  startupTimeoutMs?: number;
}

export interface KubernetesIntegration {
  isLeader(): boolean;
  /** Reason while a watch has been failing longer than its recovery window. */
  notReadyReason(): string | undefined;
  /** Current sibling list. */
  siblings(): Sibling[];
  /** Stops the watches and the rebalancer, and releases the lease if held. */
  close(): Promise<void>;
}

const NAME_LABEL = 'app.kubernetes.io/name';
/** The Lease release and the watches' ends get this long on shutdown. */
const CLOSE_TIMEOUT_MS = 3_000;
const INSTANCE_LABEL = 'app.kubernetes.io/instance';

async function ownPodSelector(
  kc: KubeConfig,
  namespace: string,
  podName: string,
  log: Logger,
): Promise<string | undefined> {
  try {
    const api = kc.makeApiClient(CoreV1Api);
    const pod = await beforeDeadline(api.readNamespacedPod({ name: podName, namespace }), 5_000, () => {
      throw new Error('timed out');
    });
    const labels = pod.metadata?.labels ?? {};
    const name = labels[NAME_LABEL];
    const instance = labels[INSTANCE_LABEL];
    if (name && instance) return `${NAME_LABEL}=${name},${INSTANCE_LABEL}=${instance}`;
  } catch (err) {
    log.warn({ err }, 'could not read this pod; watching all pods');
  }
  return undefined;
}

/**
 * Starts the Kubernetes integration: EndpointSlice discovery of siblings, the
 * pod-deletion watch, Lease leader election and (on the leader) connection
 * rebalancing. Every part reports through the hooks; nothing here touches the
 * relay or Redis directly.
 */
export async function startKubernetes(options: KubernetesOptions): Promise<KubernetesIntegration> {
  const log = options.logger.child({ component: 'k8s' });
  const kc = options.kubeConfig ?? inClusterKubeConfig();
  const metrics = new KubernetesMetrics(options.metrics);
  const watchTiming = options.watchTiming;
  const discovery = new SiblingDiscovery({
    kubeConfig: kc,
    namespace: options.namespace,
    service: options.headlessService,
    selection: { selfPodName: options.podName, portName: options.meshPortName ?? 'mesh' },
    onSiblings: (siblings) => options.hooks.onSiblings(siblings),
    logger: options.logger,
    metrics,
    ...(watchTiming ? { timing: watchTiming } : {}),
  });
  const selector =
    options.podLabelSelector ?? (await ownPodSelector(kc, options.namespace, options.podName, log));
  const pods = new PodDeletionWatch({
    kubeConfig: kc,
    namespace: options.namespace,
    ...(selector ? { labelSelector: selector } : {}),
    selfPodName: options.podName,
    onPodDeleted: (name) => options.hooks.onPodDeleted(name),
    logger: options.logger,
    metrics,
    ...(watchTiming ? { timing: watchTiming } : {}),
  });
  const election = new LeaseElection({
    kubeConfig: kc,
    namespace: options.namespace,
    leaseName: options.leaseName,
    identity: options.identity ?? `${options.podName}_${randomBytes(4).toString('hex')}`,
    logger: options.logger,
    metrics,
    ...(options.leaseTiming ? { timing: options.leaseTiming } : {}),
  });
  const rebalancer =
    options.rebalance?.enabled === false
      ? undefined
      : new Rebalancer({
          isLeader: () => election.isLeader(),
          getPeersByInstance: async () =>
            loadInRotation(await options.hooks.getPeersByInstance(), discovery.siblings()),
          requestShed: (instance, count, windowMs) => options.hooks.requestShed(instance, count, windowMs),
          logger: options.logger,
          metrics,
          ...(options.rebalance?.policy ? { policy: options.rebalance.policy } : {}),
          ...(options.rebalance?.timing ? { timing: options.rebalance.timing } : {}),
          ...(options.rebalance?.clock ? { clock: options.rebalance.clock } : {}),
        });

  discovery.start();
  pods.start();
  election.start();
  rebalancer?.start();

  const synced = await settledWithin(
    Promise.all([discovery.waitForSync(), pods.waitForSync()]),
    options.startupTimeoutMs ?? 5_000,
  );
  log.info(
    {
      namespace: options.namespace,
      service: options.headlessService,
      lease: options.leaseName,
      pod_selector: selector ?? '(all pods)',
      synced,
      rebalance: rebalancer !== undefined,
    },
    synced
      ? 'kubernetes integration started'
      : 'kubernetes integration started; API not synced yet, retrying',
  );

  let closed: Promise<void> | undefined;
  return {
    isLeader: () => election.isLeader(),
    notReadyReason: () => discovery.notReadyReason() ?? pods.notReadyReason(),
    siblings: () => discovery.siblings(),
    close: () =>
      (closed ??= (async () => {
        const stopped = (async () => {
          await rebalancer?.close();
          await Promise.all([discovery.close(), pods.close(), election.close({ release: true })]);
        })();
        // Shutdown must go on to the drain even when the API server does not answer.
        if (!(await settledWithin(stopped, CLOSE_TIMEOUT_MS))) {
          log.warn({ timeout_ms: CLOSE_TIMEOUT_MS }, 'kubernetes integration did not stop in time; going on');
        }
      })()),
  };
}
