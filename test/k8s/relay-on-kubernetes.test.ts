import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_MESSAGE } from '../../src/protocol/codec.js';
import { MessageType } from '../../src/protocol/constants.js';
import {
  awaitOnline,
  connectPeer,
  expectPeerState,
  expectTransport,
  startPod,
  type Pod,
} from '../cluster/cluster-pods.js';
import { eventually } from '../cluster/cluster-test-kit.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import type { RelayTestClient } from '../support/relay-test-client.js';
import {
  adminRequests,
  endpointSliceManifest,
  LEASE,
  leasesPath,
  NS,
  podManifest,
  podsPath,
  RELAY_LABELS,
  SELECTOR,
  SERVICE,
  slicesPath,
  startApiServerWithChartRbac,
} from './support/chart-namespace.js';
import type { KubeApiServer } from './support/kube-api-server.js';
import type { KubeManifest, KubeRest } from './support/kube-rest.js';
import { KUBE_TOOLS_TIMEOUT_MS } from './support/kube-tools.js';
import { tempDir } from '../support/temp-dir.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- raw API objects */

/**
 * Relay processes (dist/cli.js) in cluster mode with the Kubernetes
 * integration on, as the chart runs them: in-cluster environment, a mounted
 * service-account directory holding a token the real API server issued to the
 * chart's ServiceAccount (so only the chart's Role applies), a private Redis.
 * There is no kubelet or controller here: the tests create and delete the Pod
 * and EndpointSlice objects those would.
 */

let server: KubeApiServer;
let rest: KubeRest;
let admin: ReturnType<typeof adminRequests>;
let redis: RedisServer;
/** The in-cluster environment every relay process gets. */
let inCluster: Record<string, string>;
const pods: Pod[] = [];
const clients: RelayTestClient[] = [];

beforeAll(async () => {
  const started = await startApiServerWithChartRbac();
  ({ server, rest } = started);
  admin = adminRequests(rest);
  const sa = started.sa;
  const mount = tempDir('nb-sa-mount-');
  writeFileSync(join(mount, 'token'), readFileSync(sa.tokenFile));
  writeFileSync(join(mount, 'ca.crt'), readFileSync(server.caFile));
  writeFileSync(join(mount, 'namespace'), NS);
  redis = await RedisServer.start();
  inCluster = {
    NB_REDIS_URL: redis.url,
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(server.port),
    NB_K8S_ENABLED: 'true',
    NB_K8S_SERVICE_ACCOUNT_DIR: mount,
    NB_POD_NAMESPACE: NS,
    NB_K8S_HEADLESS_SERVICE: SERVICE,
    NB_K8S_LEASE_NAME: LEASE,
    NB_K8S_POD_SELECTOR: SELECTOR,
  };
}, KUBE_TOOLS_TIMEOUT_MS);

afterAll(async () => {
  for (const client of clients) client.terminate();
  await Promise.all(pods.map((pod) => pod.process.stop()));
  await stopAllRedis();
  await server?.stop();
});

/** The headless Service's slice as the EndpointSlice controller would write it for these pods. */
function meshSlice(podNames: string[]): KubeManifest {
  return endpointSliceManifest(
    `${SERVICE}-test`,
    SERVICE,
    podNames.map((pod, i) => [pod, `10.0.0.${i + 10}`]),
  );
}

async function peerOn(pod: Pod, identifier: string): Promise<RelayTestClient> {
  const client = await connectPeer(pod, identifier);
  clients.push(client);
  return client;
}

async function sumOver(list: Pod[], name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = await Promise.all(list.map((pod) => pod.process.metric(name, labels)));
  return values.reduce((a, b) => a + b, 0);
}

describe('relay processes with the Kubernetes integration', () => {
  it('a deleted pod is reaped at once through the Pod watch: its peers go offline everywhere, its links close', async () => {
    const names = ['relay-a', 'relay-b', 'relay-c'];
    for (const name of names) await admin('POST', podsPath, podManifest(name, RELAY_LABELS));
    await admin('POST', slicesPath, meshSlice(names));
    const env = {
      ...inCluster,
      NB_REDIS_KEY_PREFIX: 'reap',
      NB_REBALANCE_ENABLED: 'false',
      NB_DRAIN_WINDOW: '100ms',
    };
    const started: Pod[] = [];
    for (const name of names) {
      const pod = await startPod(name, env);
      pods.push(pod);
      started.push(pod);
    }
    const [a, b, c] = started as [Pod, Pod, Pod];
    await eventually(async () =>
      (await sumOver([a, b, c], 'relay_mesh_links_up')) === 6 ? true : undefined,
    );
    // Discovery saw the Service's other two pods from each process.
    for (const pod of started) expect(await pod.process.metric('relay_k8s_siblings')).toBe(2);

    const onC = await peerOn(c, 'k8s-on-c');
    const watcherA = await peerOn(a, 'k8s-watcher-a');
    const watcherB = await peerOn(b, 'k8s-watcher-b');
    await awaitOnline(watcherA, onC);
    await awaitOnline(watcherB, onC);
    watcherA.sendTransport(onC.peerId, Buffer.from('across the mesh'));
    await expectTransport(onC, watcherA, 'across the mesh');

    // The pod stalls (no more heartbeats) and is deleted from the API, as a node
    // failure plus a forced delete would do; then the controller drops its endpoint.
    c.process.kill('SIGSTOP');
    await admin('DELETE', `${podsPath}/relay-c`, { gracePeriodSeconds: 0 });
    await admin('PUT', `${slicesPath}/${SERVICE}-test`, {
      ...meshSlice(['relay-a', 'relay-b']),
      metadata: {
        ...meshSlice([]).metadata,
        resourceVersion: (await admin('GET', `${slicesPath}/${SERVICE}-test`)).metadata.resourceVersion,
      },
    });
    await expectPeerState(watcherA, MessageType.PeersWentOffline, onC);
    await expectPeerState(watcherB, MessageType.PeersWentOffline, onC);
    // Reaped because the pod was deleted, not because its heartbeat expired (≥ 1.5 s later).
    const reapedFor = (cause: string): Promise<number> =>
      sumOver([a, b], 'relay_cluster_reaped_instances_total', { cause });
    await eventually(async () => ((await reapedFor('pod_deleted')) === 1 ? true : undefined));
    expect(await reapedFor('expired')).toBe(0);
    await eventually(async () =>
      (await sumOver([a, b], 'relay_k8s_pod_deletions_total')) === 2 ? true : undefined,
    );
    await eventually(async () => ((await sumOver([a, b], 'relay_mesh_links_up')) === 2 ? true : undefined));
    await eventually(async () => ((await a.process.metric('relay_k8s_siblings')) === 1 ? true : undefined));
    // The survivors still relay to each other.
    watcherA.sendTransport(watcherB.peerId, Buffer.from('still here'));
    await expectTransport(watcherB, watcherA, 'still here');
    c.process.kill('SIGCONT');
    await c.process.stop();
    // A graceful stop hands the Lease back (the next test elects its own leader at once).
    for (const pod of [a, b]) {
      pod.process.kill('SIGTERM');
      expect(await pod.process.exited).toEqual({ code: 0, signal: null });
    }
    await eventually(async () => {
      const res = await rest.request('GET', `${leasesPath}/${LEASE}`);
      return res.status === 200 && !(res.body as any).spec?.holderIdentity ? true : undefined;
    });
  });

  it('the leader pod asks an overloaded pod over the mesh to shed the excess, and only that many peers get close', async () => {
    // Both pods as one Deployment runs them. With a minimum excess of 10, no round
    // sheds anything until all 20 peers are on the busy pod (mean 10, excess 10).
    const env = {
      ...inCluster,
      NB_REDIS_KEY_PREFIX: 'rebalance',
      NB_REBALANCE_INTERVAL: '500ms',
      NB_REBALANCE_WINDOW: '1s',
      NB_REBALANCE_COOLDOWN: '1h',
      NB_REBALANCE_TOLERANCE: '0.2',
      NB_REBALANCE_MIN_EXCESS: '10',
      NB_REBALANCE_MAX_FRACTION: '1',
    };
    // The pod started first takes the Lease; the peers then land on the other one, so the
    // shed request has to cross the mesh.
    const leader = await startPod('relay-leader', env);
    pods.push(leader);
    await eventually(async () => {
      const res = await rest.request('GET', `${leasesPath}/${LEASE}`);
      const holder = (res.body as any)?.spec?.holderIdentity as string | undefined;
      return holder?.startsWith('relay-leader_') ? true : undefined;
    });
    const busy = await startPod('relay-busy', env);
    pods.push(busy);
    expect(await busy.process.metric('relay_k8s_leader')).toBe(0);
    const peers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => peerOn(busy, `k8s-rebalance-${String(i).padStart(2, '0')}`)),
    );

    // 20 peers on the busy pod, none on the leader: mean 10, so the excess is 10.
    const closedPeers: RelayTestClient[] = [];
    for (const p of peers) void p.closed.then(() => closedPeers.push(p));
    await eventually(
      async () =>
        (await busy.process.metric('relay_session_closes_total', { reason: 'rebalance' })) >= 10
          ? true
          : undefined,
      15_000,
    );
    await eventually(() => (closedPeers.length >= 10 ? true : undefined));
    expect(closedPeers).toHaveLength(10);
    for (const p of closedPeers) expect(await p.next().catch(() => undefined)).toEqual(CLOSE_MESSAGE);
    expect(await leader.process.metric('relay_rebalance_shed_requested_total')).toBe(10);
    expect(await leader.process.metric('relay_mesh_shed_requests_total', { direction: 'sent' })).toBe(1);
    expect(await busy.process.metric('relay_mesh_shed_requests_total', { direction: 'received' })).toBe(1);
    expect(await busy.process.metric('relay_session_closes_total', { reason: 'rebalance' })).toBe(10);
    // The other ten stay connected and relayed.
    const survivors = peers.filter((p) => !closedPeers.includes(p));
    expect(survivors).toHaveLength(10);
    survivors[0]!.sendTransport(survivors[9]!.peerId, Buffer.from('not shed'));
    await expectTransport(survivors[9]!, survivors[0]!, 'not shed');
  });
});
