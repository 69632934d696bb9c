import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, PolicyV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MessageType } from '../../src/protocol/constants.js';
import { buildGoBinaries } from '../interop/harness.js';
import {
  CHART_DIR,
  ensureKubeTools,
  helm,
  KUBE_TOOLS_TIMEOUT_MS,
  type KubeTools,
} from '../k8s/support/kube-tools.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { describeMessage, RelayTestClient } from '../support/relay-test-client.js';
import { requireNodeBinaries } from './support/control-plane.js';
import { exchange } from './support/exchange.js';
import { NODE_NAME, type KubeNode } from './support/kube-node.js';
import { netbirdPairAcrossPods } from './support/netbird-service-pair.js';
import { NodeCluster, PAUSE_IMAGE, REDIS_IMAGE, RELAY_IMAGE } from './support/node-cluster.js';
import { ensureImages, IMAGES_TIMEOUT_MS } from './support/oci-container.js';
import { podOfPeer } from './support/peer-pod.js';

/**
 * The chart on a real node: kubelet + containerd + runc + CNI bridge +
 * kube-proxy (support/kube-node.ts) under a real control plane (apiserver,
 * controller-manager, scheduler). Pods run the images tools/kube/images.sh
 * built; their probes, Service routing and pod deletion are the real ones.
 */

/** A fixed ClusterIP, so the Redis URL does not depend on the DNS the helm test checks. */
const REDIS_SERVICE_IP = '10.96.0.50';
const RELEASE_NS = 'relay';
const RELAY_SELECTOR = 'app.kubernetes.io/name=nb-cluster-relay,app.kubernetes.io/component=relay';
/** The chart's exposed address here: the instance URL every client must hear, whatever its pod. */
const EXPOSED_ADDRESS = 'rel://relay.test:443';
/** NetBird's Go relay client (test/interop's driver); cached unless its sources changed. */
const GO_BUILD_TIMEOUT_MS = 20 * 60_000;

let tools: KubeTools;
let cluster: NodeCluster | undefined;
let node: KubeNode | undefined;
let core: CoreV1Api;
let apps: AppsV1Api;
let policy: PolicyV1Api;
let kubeconfig: string;
let work: string;
const clients: RelayTestClient[] = [];
/** Host ports that reach the relay Service and Redis inside the node (set by the helm install test). */
let relayPort = 0;
let redisPort = 0;
/** ms from deleting alice's pod to bob hearing alice went offline; undefined: not within 15 s. */
let offlineAfterMs: number | undefined;

beforeAll(
  async () => {
    tools = await ensureKubeTools();
    await ensureImages();
    await buildGoBinaries(GO_BUILD_TIMEOUT_MS);
    requireNodeBinaries(['kubelet', 'kube-proxy', 'coredns']);
    work = mkdtempSync(join(tmpdir(), 'nb-node-test-'));
    cluster = await NodeCluster.start(tools);
    node = cluster.node;
    kubeconfig = cluster.kubeconfig;
    const kc = cluster.api.adminKubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    policy = kc.makeApiClient(PolicyV1Api);
    process.stderr.write(`[k8s-node] node Ready ${cluster.readyMs} ms after containerd started\n`);
  },
  KUBE_TOOLS_TIMEOUT_MS + IMAGES_TIMEOUT_MS + GO_BUILD_TIMEOUT_MS,
);

afterAll(async () => {
  for (const c of clients) c.terminate();
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

async function ensureNamespace(name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
  // the serviceaccount controller creates "default", which pod admission requires
  await expect
    .poll(
      async () =>
        (await core.listNamespacedServiceAccount({ namespace: name })).items.map((s) => s.metadata?.name),
      {
        timeout: 30_000,
      },
    )
    .toContain('default');
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function relayPods(): Promise<V1Pod[]> {
  return (
    await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: RELAY_SELECTOR })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);
}

function explain(pods: V1Pod[]): string {
  return JSON.stringify(
    pods.map((p) => ({
      name: p.metadata?.name,
      phase: p.status?.phase,
      statuses: p.status?.containerStatuses,
    })),
  ).slice(0, 3000);
}

async function connect(port: number, identifier: string): Promise<RelayTestClient> {
  const client = await RelayTestClient.connect(`rel://127.0.0.1:${port}`, {
    identifier,
    secret: TEST_SECRET,
  });
  clients.push(client);
  return client;
}

/** The pod that holds a peer's newest session ('' while it has none). */
function podOf(redisPort: number, peer: RelayTestClient): Promise<string> {
  return podOfPeer(redisPort, peer.peerKey);
}

/**
 * A peer that reconnects through the Service whenever its connection closes, as a NetBird client does,
 * and records how long each outage lasted (close -> authenticated again).
 */
class KeptPeer {
  client: RelayTestClient | undefined;
  readonly gapsMs: number[] = [];
  #stopped = false;

  constructor(readonly identifier: string) {}

  async start(): Promise<void> {
    this.client = await connect(relayPort, this.identifier);
    void this.#watch(this.client);
  }

  async #watch(client: RelayTestClient): Promise<void> {
    await client.closed;
    const closedAt = Date.now();
    while (!this.#stopped) {
      try {
        this.client = await connect(relayPort, this.identifier);
        this.gapsMs.push(Date.now() - closedAt);
        void this.#watch(this.client);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  stop(): void {
    this.#stopped = true;
  }
}

describe('a real node', () => {
  it('runs a pod of the pause image, then one of the relay image that turns Ready through its probe', async () => {
    await ensureNamespace('smoke');
    await core.createNamespacedPod({
      namespace: 'smoke',
      body: {
        metadata: { name: 'pause' },
        spec: { containers: [{ name: 'pause', image: PAUSE_IMAGE, imagePullPolicy: 'Never' }] },
      },
    });
    await expect
      .poll(async () => (await core.readNamespacedPod({ name: 'pause', namespace: 'smoke' })).status?.phase, {
        timeout: 60_000,
        interval: 500,
      })
      .toBe('Running');
    const pause = await core.readNamespacedPod({ name: 'pause', namespace: 'smoke' });
    expect(pause.spec?.nodeName).toBe(NODE_NAME);
    expect(pause.status?.podIP).toMatch(/^10\.244\.0\.\d+$/);

    await core.createNamespacedPod({
      namespace: 'smoke',
      body: {
        metadata: { name: 'relay' },
        spec: {
          automountServiceAccountToken: false,
          containers: [
            {
              name: 'relay',
              image: RELAY_IMAGE,
              imagePullPolicy: 'Never',
              env: [
                { name: 'NB_LISTEN_ADDRESS', value: ':8080' },
                { name: 'NB_EXPOSED_ADDRESS', value: 'rel://relay.smoke:8080' },
                { name: 'NB_AUTH_SECRET', value: TEST_SECRET },
                { name: 'NB_HEALTH_LISTEN_ADDRESS', value: ':9000' },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 9000 }, periodSeconds: 1 },
              securityContext: {
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
              },
            },
          ],
        },
      },
    });
    await expect
      .poll(async () => isReady(await core.readNamespacedPod({ name: 'relay', namespace: 'smoke' })), {
        timeout: 60_000,
        interval: 500,
      })
      .toBe(true);
    const relay = await core.readNamespacedPod({ name: 'relay', namespace: 'smoke' });
    // from the host, through the node's network namespace, to the pod's IP
    const port = await node!.expose(relay.status!.podIP!, 8080);
    const alice = await connect(port, 'node-smoke-a');
    const bob = await connect(port, 'node-smoke-b');
    await exchange(alice, bob, 'through a pod');
    await core.deleteNamespace({ name: 'smoke' });
  }, 180_000);

  it('helm install: pods Ready through their probes, helm test, two peers on different pods through the Service, a deleted pod is reaped through the pod watch and traffic resumes', async () => {
    await ensureNamespace('redis');
    const redisLabels = { app: 'redis' };
    await apps.createNamespacedDeployment({
      namespace: 'redis',
      body: {
        metadata: { name: 'redis' },
        spec: {
          selector: { matchLabels: redisLabels },
          template: {
            metadata: { labels: redisLabels },
            spec: {
              automountServiceAccountToken: false,
              containers: [
                {
                  name: 'redis',
                  image: REDIS_IMAGE,
                  imagePullPolicy: 'Never',
                  ports: [{ containerPort: 6379 }],
                  readinessProbe: { tcpSocket: { port: 6379 }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    });
    await core.createNamespacedService({
      namespace: 'redis',
      body: {
        metadata: { name: 'redis' },
        spec: { clusterIP: REDIS_SERVICE_IP, selector: redisLabels, ports: [{ port: 6379 }] },
      },
    });

    const values = join(work, 'values.yaml');
    writeFileSync(
      values,
      JSON.stringify({
        image: { repository: 'localhost/nb-cluster-relay', tag: 'test', pullPolicy: 'Never' },
        replicaCount: 2,
        relay: { exposedAddress: EXPOSED_ADDRESS, drainWindowSeconds: 2 },
        auth: { secret: TEST_SECRET },
        cluster: { redis: { url: `redis://${REDIS_SERVICE_IP}:6379/0` } },
        service: { type: 'ClusterIP' },
        preStopSleepSeconds: 1,
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
      }),
    );
    const installStarted = Date.now();
    await helm(tools, [
      'install',
      'relay',
      CHART_DIR,
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${RELEASE_NS}`,
      '--create-namespace',
      `--values=${values}`,
      '--wait',
      '--timeout=4m',
    ]).catch(async (err: Error) => {
      throw new Error(`${err.message}\npods: ${explain(await relayPods())}\n${node!.logTail('kubelet')}`);
    });
    process.stderr.write(`[k8s-node] helm install --wait took ${Date.now() - installStarted} ms\n`);
    const pods = await relayPods();
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(NODE_NAME);
      expect(isReady(pod)).toBe(true);
      expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    }

    // the chart's test pod resolves the relay Service through the cluster DNS and authenticates
    const { stdout: tested } = await helm(tools, [
      'test',
      'relay',
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${RELEASE_NS}`,
      '--timeout=2m',
    ]);
    expect(tested).toMatch(/Phase:\s+Succeeded/);

    redisPort = await node!.expose(REDIS_SERVICE_IP, 6379);
    const service = await core.readNamespacedService({
      name: 'relay-nb-cluster-relay',
      namespace: RELEASE_NS,
    });
    relayPort = await node!.expose(service.spec!.clusterIP!, 443);
    // kube-proxy picks a pod per connection: connect until two peers are on different pods
    const peers: RelayTestClient[] = [];
    const placed = new Map<string, RelayTestClient>();
    for (let i = 0; i < 30 && placed.size < 2; i++) {
      const peer = await connect(relayPort, `node-peer-${i}`);
      peers.push(peer);
      let pod = '';
      await expect.poll(async () => (pod = await podOf(redisPort, peer)), { timeout: 10_000 }).not.toBe('');
      if (!placed.has(pod)) placed.set(pod, peer);
    }
    expect(placed.size).toBe(2);
    const [[podA, alice], [, bob]] = [...placed.entries()] as [
      [string, RelayTestClient],
      [string, RelayTestClient],
    ];
    await exchange(alice, bob, 'pod to pod through the Service');
    await exchange(bob, alice, 'and back');

    // Delete alice's pod at once (grace 0): bob, on the other pod, is told alice went offline, and that
    // pod's log shows its pod watch (API access through the kubernetes Service, with the token and CA
    // the kubelet projected) saw the deletion.
    // bob asks to hear of alice (NetBird's SubscribePeerState): offline notices go to subscribers only
    bob.subscribe([alice.peerId]);
    const podsNow = await relayPods();
    const survivor = podsNow.find((p) => p.metadata?.name !== podA)!;
    const deleted = Date.now();
    await core.deleteNamespacedPod({ name: podA, namespace: RELEASE_NS, gracePeriodSeconds: 0 });
    const survivorLogNow = () =>
      node!.podLog(RELEASE_NS, survivor.metadata!.name!, survivor.metadata!.uid!, 'relay');
    // Waited for here, asserted in its own test below.
    offlineAfterMs = await (async () => {
      for (;;) {
        const message = await bob.next(15_000);
        if (
          message[1] === MessageType.PeersWentOffline &&
          describeMessage(message).peers.includes(alice.peerId.toString('latin1'))
        )
          return Date.now() - deleted;
      }
    })().catch(() => undefined);
    process.stderr.write(
      `[k8s-node] deleted pod's peer announced offline: ${offlineAfterMs === undefined ? 'not within 15 s' : `${offlineAfterMs} ms`}\n`,
    );
    await expect
      .poll(survivorLogNow, { timeout: 10_000 })
      .toMatch(new RegExp(`"pod":"${podA}".*"msg":"relay pod deleted"`));
    // Who removes alice's session is a race: the deleted pod still gets SIGTERM and may drain it
    // itself before the survivor's reap (then the reap finds nothing). Either way bob hears the
    // offline (asserted below); which path won is recorded.
    const reaped = /"cause":"pod_deleted","sessions":([1-9]\d*),"msg":"reaped instance"/.exec(
      survivorLogNow(),
    );
    process.stderr.write(
      `[k8s-node] alice's session removed by ${reaped ? `the survivor's reap (${reaped[1]} sessions)` : "the deleted pod's own drain"}\n`,
    );

    // alice comes back through the Service and traffic resumes
    alice.terminate();
    const aliceAgain = await connect(relayPort, `node-peer-${peers.indexOf(alice)}`);
    await exchange(aliceAgain, bob, 'after the pod was deleted');
    await expect
      .poll(async () => (await relayPods()).filter(isReady).length, { timeout: 90_000, interval: 500 })
      .toBe(2);
  }, 420_000);

  it("a peer subscribed on another pod hears that the deleted pod's peer went offline", () => {
    expect(offlineAfterMs).toBeDefined();
  });

  it("NetBird's Go relay client through the Service: clients connect until two are on different pods, and those two exchange every packet size both ways", async () => {
    const run = await netbirdPairAcrossPods({
      url: `rel://127.0.0.1:${relayPort}`,
      secret: TEST_SECRET,
      instanceUrl: EXPOSED_ADDRESS,
      podOf: (peer) => podOfPeer(redisPort, peer),
      maxClients: 30,
      timeoutMs: 180_000,
    });
    const paired: Record<string, unknown> = run.paired ?? {};
    process.stderr.write(
      `[k8s-node] NetBird Go client through the Service: ${run.pods.length} client(s) connected until two were on different pods (${JSON.stringify(run.pods)}); pair: ${String(paired.mtuReceivedAB)}+${String(paired.mtuReceivedBA)} packets of 1..${String(paired.maxSize)} B in ${String(paired.mtuPhaseMs)} ms, ${String(paired.bigReceivedAB)}+${String(paired.bigReceivedBA)} up to ${String(paired.bigMaxSize)} B; ${run.result.pass ? 'pass' : `FAIL: ${run.result.reason}`}\n`,
    );
    expect(run.result.pass, run.result.reason).toBe(true);
    const livePods = new Set((await relayPods()).map((p) => p.metadata!.name!));
    const [podI, podJ] = [run.pods[Number(paired.i)], run.pods[Number(paired.j)]];
    expect(podI).not.toBe(podJ);
    expect(livePods.has(podI!) && livePods.has(podJ!)).toBe(true);
    // every packet, each way, arrived intact and in order: 2,000 of 1..1280 B, 200 of 1281..8782 B
    expect(paired).toMatchObject({
      pass: true,
      mtuSentAB: 2000,
      mtuReceivedAB: 2000,
      mtuSentBA: 2000,
      mtuReceivedBA: 2000,
      bigSentAB: 200,
      bigReceivedAB: 200,
      bigSentBA: 200,
      bigReceivedBA: 200,
      mtuLost: 0,
      mtuCorrupt: 0,
      mtuReordered: 0,
      bigLost: 0,
      bigCorrupt: 0,
      bigReordered: 0,
    });
  }, 240_000);

  it('helm upgrade rolls every pod: no peer is lost, each reconnects through the Service', async () => {
    const before = new Set((await relayPods()).map((p) => p.metadata!.name!));
    const peers = Array.from({ length: 12 }, (_, i) => new KeptPeer(`node-rolled-${i}`));
    await Promise.all(peers.map((p) => p.start()));
    const started = Date.now();
    await helm(tools, [
      'upgrade',
      'relay',
      CHART_DIR,
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${RELEASE_NS}`,
      '--reuse-values',
      `--set=podAnnotations.rolled=r${started}`,
      '--wait',
      '--timeout=4m',
    ]);
    // --wait returns once the new pods are Ready; the old ones are still draining
    await expect
      .poll(
        async () =>
          (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: RELAY_SELECTOR })).items
            .length,
        {
          timeout: 90_000,
          interval: 500,
        },
      )
      .toBe(2);
    const after = (await relayPods()).map((p) => p.metadata!.name!);
    process.stderr.write(`[k8s-node] helm upgrade rolled 2 pods in ${Date.now() - started} ms\n`);
    expect(after.filter((name) => before.has(name))).toEqual([]);

    // every peer was on an old pod, so every peer reconnected at least once; none is left out
    await expect
      .poll(() => peers.filter((p) => p.gapsMs.length === 0).map((p) => p.identifier), { timeout: 30_000 })
      .toEqual([]);
    for (const peer of peers) peer.stop();
    const current = new Set(after);
    for (const peer of peers) {
      await expect
        .poll(() => podOf(redisPort, peer.client!), { timeout: 10_000 })
        .toSatisfy((pod: string) => current.has(pod));
    }
    for (let i = 0; i < peers.length; i += 2) {
      await exchange(peers[i]!.client!, peers[i + 1]!.client!, `after the roll ${i}`);
    }
    const gaps = peers.flatMap((p) => p.gapsMs);
    process.stderr.write(
      `[k8s-node] rolling upgrade: ${peers.length} peers, ${gaps.length} reconnects, longest gap ${Math.max(...gaps)} ms, median ${gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)]} ms\n`,
    );
  }, 300_000);

  it('a PodDisruptionBudget refuses a second eviction while the first evicted pod is replaced', async () => {
    const [first, second] = await relayPods();
    const evict = (pod: V1Pod) =>
      core.createNamespacedPodEviction({
        name: pod.metadata!.name!,
        namespace: RELEASE_NS,
        body: { metadata: { name: pod.metadata!.name!, namespace: RELEASE_NS } },
      });
    await evict(first!);
    await expect(evict(second!)).rejects.toMatchObject({ code: 429 });
    const pdb = await policy.readNamespacedPodDisruptionBudget({
      name: 'relay-nb-cluster-relay',
      namespace: RELEASE_NS,
    });
    expect(pdb.status?.disruptionsAllowed).toBe(0);
    await expect
      .poll(async () => (await relayPods()).filter(isReady).length, { timeout: 90_000, interval: 500 })
      .toBe(2);
  }, 180_000);
});
