import {
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  DiscoveryV1Api,
  PolicyV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiServer } from '../k8s/support/kube-api-server.js';
import { ensureKubeTools, KUBE_TOOLS_TIMEOUT_MS } from '../k8s/support/kube-tools.js';
import { Controllers } from './support/control-plane.js';

/**
 * The real kube-controller-manager and kube-scheduler (same version as the
 * apiserver, built by tools/kube/build.sh) acting on our objects. No kubelet
 * runs here (node.test.ts has one): the test plays the kubelet's one part,
 * writing each pod's status (Running, Ready, podIP) once the scheduler has
 * bound it to the node.
 */

const NS = 'relay';
const LABELS = { 'app.kubernetes.io/name': 'nb-cluster-relay' };
let api: KubeApiServer;
let controllers: Controllers | undefined;

beforeAll(async () => {
  const tools = await ensureKubeTools();
  api = await KubeApiServer.start(tools);
  // no kubelet heartbeats: keep the fake node from being tainted and its pods evicted mid-test
  controllers = await Controllers.start(api, ['--node-monitor-grace-period=10m']);
}, KUBE_TOOLS_TIMEOUT_MS);

afterAll(async () => {
  await controllers?.stop();
  await api?.stop();
});

describe('a real controller-manager and scheduler', () => {
  it('Deployment → ReplicaSet → Pods bound to the node; readiness fills the EndpointSlice; the HPA and the PDB act', async () => {
    const kc = api.adminKubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const autoscaling = kc.makeApiClient(AutoscalingV2Api);
    const policy = kc.makeApiClient(PolicyV1Api);

    await core.createNode({
      body: { metadata: { name: 'node-0', labels: { 'kubernetes.io/hostname': 'node-0' } } },
    });
    await core.replaceNodeStatus({
      name: 'node-0',
      body: {
        metadata: { name: 'node-0' },
        status: {
          capacity: { cpu: '8', memory: '16Gi', pods: '110' },
          allocatable: { cpu: '8', memory: '16Gi', pods: '110' },
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'test',
              lastHeartbeatTime: new Date(),
              lastTransitionTime: new Date(),
            },
          ],
        },
      },
    });
    await core.createNamespace({ body: { metadata: { name: NS } } });
    // the serviceaccount controller creates "default", which pod admission requires
    await expect
      .poll(
        async () =>
          (await core.listNamespacedServiceAccount({ namespace: NS })).items.map((s) => s.metadata?.name),
        {
          timeout: 30_000,
        },
      )
      .toContain('default');
    await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'relay-mesh', labels: LABELS },
        spec: { clusterIP: 'None', selector: LABELS, ports: [{ name: 'mesh', port: 7946 }] },
      },
    });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'relay', labels: LABELS },
        spec: {
          replicas: 1,
          selector: { matchLabels: LABELS },
          template: {
            metadata: { labels: LABELS },
            spec: {
              containers: [
                {
                  name: 'relay',
                  image: 'localhost/nb-cluster-relay:test',
                  ports: [{ name: 'mesh', containerPort: 7946 }],
                  resources: { requests: { cpu: '100m', memory: '64Mi' } },
                },
              ],
            },
          },
        },
      },
    });

    const pods = async (): Promise<V1Pod[]> =>
      (
        await core.listNamespacedPod({
          namespace: NS,
          labelSelector: 'app.kubernetes.io/name=nb-cluster-relay',
        })
      ).items;
    // the deployment controller made a ReplicaSet owned by the Deployment
    await expect
      .poll(
        async () =>
          (await apps.listNamespacedReplicaSet({ namespace: NS })).items.map(
            (r) => r.metadata?.ownerReferences?.[0]?.name,
          ),
        {
          timeout: 30_000,
        },
      )
      .toEqual(['relay']);

    // the HPA (minReplicas 3, no metrics needed for that) scales the Deployment up
    await autoscaling.createNamespacedHorizontalPodAutoscaler({
      namespace: NS,
      body: {
        metadata: { name: 'relay' },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'relay' },
          minReplicas: 3,
          maxReplicas: 5,
          metrics: [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
            },
          ],
        },
      },
    });
    await expect
      .poll(
        async () => (await apps.readNamespacedDeployment({ name: 'relay', namespace: NS })).spec?.replicas,
        {
          timeout: 60_000,
          interval: 500,
        },
      )
      .toBe(3);

    // the scheduler binds all three to the node
    await expect
      .poll(async () => (await pods()).map((p) => p.spec?.nodeName ?? '').sort(), {
        timeout: 60_000,
        interval: 500,
      })
      .toEqual(['node-0', 'node-0', 'node-0']);

    // play the kubelet: Running and Ready with an IP each
    const bound = await pods();
    for (const [i, pod] of bound.entries()) {
      await core.replaceNamespacedPodStatus({
        name: pod.metadata!.name!,
        namespace: NS,
        body: {
          ...pod,
          status: {
            phase: 'Running',
            podIP: `10.244.0.${10 + i}`,
            podIPs: [{ ip: `10.244.0.${10 + i}` }],
            hostIP: '127.0.0.1',
            startTime: new Date(),
            conditions: [
              { type: 'Ready', status: 'True', lastTransitionTime: new Date() },
              { type: 'ContainersReady', status: 'True', lastTransitionTime: new Date() },
            ],
          },
        },
      });
    }
    const readyAddresses = async (): Promise<string[]> =>
      (
        await discovery.listNamespacedEndpointSlice({
          namespace: NS,
          labelSelector: 'kubernetes.io/service-name=relay-mesh',
        })
      ).items
        .flatMap((s) => s.endpoints ?? [])
        .filter((e) => e.conditions?.ready)
        .flatMap((e) => e.addresses)
        .sort();
    await expect
      .poll(readyAddresses, { timeout: 30_000, interval: 500 })
      .toEqual(['10.244.0.10', '10.244.0.11', '10.244.0.12']);

    // one pod turns unready: the EndpointSlice controller takes it out of rotation
    const first = (await pods()).find((p) => p.status?.podIP === '10.244.0.10')!;
    await core.replaceNamespacedPodStatus({
      name: first.metadata!.name!,
      namespace: NS,
      body: {
        ...first,
        status: {
          ...first.status,
          conditions: [
            { type: 'Ready', status: 'False', lastTransitionTime: new Date() },
            { type: 'ContainersReady', status: 'False', lastTransitionTime: new Date() },
          ],
        },
      },
    });
    await expect
      .poll(readyAddresses, { timeout: 30_000, interval: 500 })
      .toEqual(['10.244.0.11', '10.244.0.12']);

    // the disruption controller: maxUnavailable 1 with one pod already down allows no eviction
    await policy.createNamespacedPodDisruptionBudget({
      namespace: NS,
      body: { metadata: { name: 'relay' }, spec: { maxUnavailable: 1, selector: { matchLabels: LABELS } } },
    });
    await expect
      .poll(
        async () => {
          const s = (await policy.readNamespacedPodDisruptionBudget({ name: 'relay', namespace: NS })).status;
          return [s?.expectedPods, s?.currentHealthy, s?.disruptionsAllowed];
        },
        { timeout: 30_000, interval: 500 },
      )
      .toEqual([3, 2, 0]);
    const healthy = (await pods()).find((p) => p.status?.podIP === '10.244.0.11')!;
    const eviction = core.createNamespacedPodEviction({
      name: healthy.metadata!.name!,
      namespace: NS,
      body: { metadata: { name: healthy.metadata!.name!, namespace: NS } },
    });
    await expect(eviction).rejects.toMatchObject({ code: 429 });
    expect(controllers!.logTail('kube-controller-manager')).not.toMatch(/panic/);
  }, 240_000);
});
