import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesMetrics } from '../../src/k8s/k8s-metrics.js';
import { detectInCluster, inClusterKubeConfig } from '../../src/k8s/kube-config.js';
import { startKubernetes, type KubernetesIntegration } from '../../src/k8s/kubernetes.js';
import { LeaseElection, type LeaseTiming } from '../../src/k8s/lease-election.js';
import type { InstanceLoad } from '../../src/k8s/rotation.js';
import type { Sibling } from '../../src/k8s/sibling-discovery.js';
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
  type ChartNamespace,
} from './support/chart-namespace.js';
import { metricValue } from '../support/metric-value.js';
import type { KubeApiServer } from './support/kube-api-server.js';
import { SteppedTimers } from './support/stepped-timers.js';
import type { KubeRest } from './support/kube-rest.js';
import { KUBE_TOOLS_TIMEOUT_MS } from './support/kube-tools.js';
import { tempDir } from '../support/temp-dir.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- raw API objects */

/**
 * src/k8s against a real kube-apiserver + etcd. The chart's own ServiceAccount,
 * Role and RoleBinding are installed, and every client here authenticates with
 * a service-account token issued by the server: the code runs with exactly the
 * rights the chart grants.
 */

const FAST_LEASE: LeaseTiming = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 };
const FAST_WATCH = {
  watchTimeoutSeconds: 2,
  watchdogGraceMs: 1_000,
  listTimeoutMs: 1_500,
  backoffInitialMs: 100,
  backoffMaxMs: 500,
  brokenAfterMs: 2_000,
};

const logger = pino({ level: process.env.K8S_TEST_LOG ?? 'silent' });
let server: KubeApiServer;
let rest: KubeRest;
let sa: ChartNamespace['sa'];
let admin: ReturnType<typeof adminRequests>;
const integrations: KubernetesIntegration[] = [];
const elections: LeaseElection[] = [];

beforeAll(async () => {
  ({ server, rest, sa } = await startApiServerWithChartRbac());
  admin = adminRequests(rest);
}, KUBE_TOOLS_TIMEOUT_MS);

afterEach(async () => {
  await Promise.all(integrations.splice(0).map((i) => i.close()));
  await Promise.all(elections.splice(0).map((e) => e.close({ release: false })));
  await rest.request('DELETE', `${leasesPath}/${LEASE}`);
});

afterAll(async () => {
  await server?.stop();
});

interface Recorder {
  siblings: Sibling[][];
  deleted: string[];
  shed: Array<[string, number, number]>;
  registry: Registry;
}

async function start(
  podName: string,
  extra: { peers?: () => Promise<InstanceLoad[]>; rebalance?: boolean; timers?: SteppedTimers } = {},
): Promise<{ k8s: KubernetesIntegration; rec: Recorder }> {
  const rec: Recorder = { siblings: [], deleted: [], shed: [], registry: new Registry() };
  const k8s = await startKubernetes({
    namespace: NS,
    podName,
    headlessService: SERVICE,
    leaseName: LEASE,
    podLabelSelector: SELECTOR,
    kubeConfig: sa.kubeConfig,
    logger,
    metrics: rec.registry,
    hooks: {
      onSiblings: (s) => rec.siblings.push(s),
      onPodDeleted: (name) => rec.deleted.push(name),
      getPeersByInstance: extra.peers ?? (async () => []),
      requestShed: async (instance, count, windowMs) => {
        rec.shed.push([instance, count, windowMs]);
      },
    },
    rebalance: {
      enabled: extra.rebalance ?? false,
      policy: { minExcess: 1, maxShedFraction: 1 },
      timing: { intervalMs: 300, cooldownMs: 60_000, shedWindowMs: 5_000 },
      ...(extra.timers ? { clock: extra.timers } : {}),
    },
    watchTiming: FAST_WATCH,
    leaseTiming: FAST_LEASE,
  });
  integrations.push(k8s);
  return { k8s, rec };
}

const latest = (rec: Recorder): string[] =>
  (rec.siblings.at(-1) ?? []).map((s) => `${s.podName}=${s.address}${s.ready ? '' : '(not ready)'}`);

describe('sibling discovery (EndpointSlices of the headless Service)', () => {
  it('follows slices being created, updated and deleted, merging all of them', async () => {
    const { k8s, rec } = await start('relay-self');
    await admin(
      'POST',
      slicesPath,
      endpointSliceManifest('mesh-a', SERVICE, [
        ['relay-self', '10.1.0.9'],
        ['relay-a', '10.1.0.1'],
      ]),
    );
    await expect.poll(() => latest(rec)).toEqual(['relay-a=10.1.0.1:7946']);

    // A second slice of the same Service, one of its pods not serving yet.
    await admin(
      'POST',
      slicesPath,
      endpointSliceManifest('mesh-b', SERVICE, [
        ['relay-b', '10.1.0.2', { ready: false, serving: false, terminating: false }],
      ]),
    );
    // A slice of another Service is not ours.
    await admin(
      'POST',
      slicesPath,
      endpointSliceManifest('other', 'something-else', [['other-pod', '10.9.9.9']]),
    );
    await expect
      .poll(() => latest(rec))
      .toEqual(['relay-a=10.1.0.1:7946', 'relay-b=10.1.0.2:7946(not ready)']);

    // relay-a starts terminating (still serving its drain), relay-b becomes ready.
    const a = await admin('GET', `${slicesPath}/mesh-a`);
    a.endpoints[1].conditions = { ready: false, serving: true, terminating: true };
    await admin('PUT', `${slicesPath}/mesh-a`, a);
    const b = await admin('GET', `${slicesPath}/mesh-b`);
    b.endpoints[0].conditions = { ready: true, serving: true, terminating: false };
    await admin('PUT', `${slicesPath}/mesh-b`, b);
    await expect
      .poll(() => latest(rec))
      .toEqual(['relay-a=10.1.0.1:7946(not ready)', 'relay-b=10.1.0.2:7946']);

    await admin('DELETE', `${slicesPath}/mesh-a`);
    await expect.poll(() => latest(rec)).toEqual(['relay-b=10.1.0.2:7946']);
    expect(k8s.siblings().map((s) => s.podName)).toEqual(['relay-b']);
    expect(await metricValue(rec.registry, 'relay_k8s_siblings', { state: 'ready' })).toBe(1);
    expect(k8s.notReadyReason()).toBeUndefined();
    await admin('DELETE', `${slicesPath}/mesh-b`);
    await admin('DELETE', `${slicesPath}/other`);
    await expect.poll(() => latest(rec)).toEqual([]);
  });
});

describe('pod deletion watch', () => {
  it('reports a deleted relay pod at once, but not a terminating one or another app’s pod', async () => {
    const { rec } = await start('relay-self');
    await admin('POST', podsPath, podManifest('relay-gone', RELAY_LABELS));
    await admin('POST', podsPath, podManifest('relay-draining', RELAY_LABELS, 'node-1'));
    await admin('POST', podsPath, podManifest('not-a-relay', { app: 'other' }));
    await admin('POST', podsPath, podManifest('relay-marker', RELAY_LABELS));

    await admin('DELETE', `${podsPath}/not-a-relay`);
    const started = Date.now();
    await admin('DELETE', `${podsPath}/relay-gone`);
    await expect.poll(() => rec.deleted, { timeout: 5_000, interval: 20 }).toEqual(['relay-gone']);
    expect(Date.now() - started).toBeLessThan(3_000);

    // Bound to a node: graceful deletion only marks it terminating (no kubelet here to finish).
    const terminating = await admin('DELETE', `${podsPath}/relay-draining`, { gracePeriodSeconds: 30 });
    expect(terminating.metadata.deletionTimestamp).toBeTruthy();
    // The watch delivers events in order: once the marker's deletion (after the terminating
    // update) is reported, a report of the terminating pod could only have come before it.
    await admin('DELETE', `${podsPath}/relay-marker`);
    await expect.poll(() => rec.deleted).toEqual(['relay-gone', 'relay-marker']);
    await admin('DELETE', `${podsPath}/relay-draining`, { gracePeriodSeconds: 0 });
    await expect.poll(() => rec.deleted).toEqual(['relay-gone', 'relay-marker', 'relay-draining']);
    expect(await metricValue(rec.registry, 'relay_k8s_pod_deletions_total')).toBe(3);
  });
});

describe('Lease leader election', () => {
  function contender(
    identity: string,
    registry = new Registry(),
    timing: LeaseTiming = FAST_LEASE,
  ): LeaseElection {
    const election = new LeaseElection({
      kubeConfig: sa.kubeConfig,
      namespace: NS,
      leaseName: LEASE,
      identity,
      logger,
      metrics: new KubernetesMetrics(registry),
      timing,
    });
    elections.push(election);
    election.start();
    return election;
  }
  const readLease = async (): Promise<any> => admin('GET', `${leasesPath}/${LEASE}`);
  const leaders = (all: LeaseElection[]): string[] => all.filter((e) => e.isLeader()).map((e) => e.identity);

  it('elects exactly one leader and writes a client-go compatible Lease', async () => {
    const all = [contender('pod-a_1'), contender('pod-b_1'), contender('pod-c_1')];
    await expect.poll(() => leaders(all).length, { timeout: 10_000 }).toBe(1);
    // Stays one leader over several renewals (events on the Lease, not a timer): a takeover in
    // between would show as a second leader here and raise leaseTransitions below.
    const renewals = new Set<string>();
    const leaderCounts = new Set<number>();
    await expect
      .poll(
        async () => {
          renewals.add((await readLease()).spec.renewTime as string);
          leaderCounts.add(leaders(all).length);
          return renewals.size;
        },
        { timeout: 10_000, interval: 100 },
      )
      .toBeGreaterThanOrEqual(4);
    expect([...leaderCounts]).toEqual([1]);
    const lease = await readLease();
    expect(lease.spec.holderIdentity).toBe(leaders(all)[0]);
    expect(lease.spec.leaseDurationSeconds).toBe(3);
    expect(lease.spec.leaseTransitions).toBe(0);
    // MicroTime: six fractional digits, as client-go writes and the API server requires.
    expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(lease.spec.acquireTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // The leader keeps renewing.
    const before = lease.spec.renewTime as string;
    await expect.poll(async () => (await readLease()).spec.renewTime, { timeout: 3_000 }).not.toBe(before);
    expect(all.every((e) => e.leader() === lease.spec.holderIdentity)).toBe(true);
  });

  it('fails over when the leader stops renewing, only after the lease duration', async () => {
    const a = contender('pod-a_2');
    await expect.poll(() => a.isLeader(), { timeout: 10_000 }).toBe(true);
    const b = contender('pod-b_2');
    // b has read the Lease and seen a hold it: it does not take over a renewed lease.
    await expect.poll(() => b.leader(), { timeout: 5_000 }).toBe('pod-a_2');
    expect(b.isLeader()).toBe(false);

    const stopped = Date.now();
    await a.close({ release: false }); // crashed: stops renewing, no release
    await expect.poll(() => b.isLeader(), { timeout: 10_000, interval: 50 }).toBe(true);
    const took = Date.now() - stopped;
    expect(took).toBeGreaterThanOrEqual(FAST_LEASE.leaseDurationMs - 500);
    expect(took).toBeLessThan(FAST_LEASE.leaseDurationMs + 4_000);
    const lease = await readLease();
    expect(lease.spec.holderIdentity).toBe('pod-b_2');
    expect(lease.spec.leaseTransitions).toBe(1);
  });

  it('hands over at once when the leader releases the lease on shutdown', async () => {
    // A long lease: waiting for expiry (~10 s) and a release hand-over (< 1 s) cannot be confused.
    const slow: LeaseTiming = { leaseDurationMs: 10_000, renewDeadlineMs: 6_000, retryPeriodMs: 400 };
    const a = contender('pod-a_3', new Registry(), slow);
    await expect.poll(() => a.isLeader(), { timeout: 10_000 }).toBe(true);
    const b = contender('pod-b_3', new Registry(), slow);
    await expect.poll(() => b.leader(), { timeout: 5_000 }).toBe('pod-a_3');
    await a.close();
    expect((await readLease()).spec.holderIdentity).not.toBe('pod-a_3');
    // Within half the lease duration: only the release, never the expiry, can make b leader this soon.
    await expect.poll(() => b.isLeader(), { timeout: slow.leaseDurationMs / 2, interval: 20 }).toBe(true);
  });

  it('a leader that cannot renew (someone else wrote the lease) steps down within the renew deadline', async () => {
    const registry = new Registry();
    const a = contender('pod-a_4', registry);
    await expect.poll(() => a.isLeader(), { timeout: 10_000 }).toBe(true);
    // Another writer takes the lease (e.g. a partitioned leader came back): a's update now conflicts / sees a holder.
    const lease = await readLease();
    lease.spec.holderIdentity = 'intruder';
    lease.spec.renewTime = new Date(Date.now() + 60_000).toISOString().replace('Z', '000Z');
    lease.spec.leaseDurationSeconds = 60;
    await admin('PUT', `${leasesPath}/${LEASE}`, lease);
    const taken = Date.now();
    await expect.poll(() => a.isLeader(), { timeout: 5_000, interval: 20 }).toBe(false);
    expect(Date.now() - taken).toBeLessThan(FAST_LEASE.renewDeadlineMs + 2_000);
    expect(a.leader()).toBe('intruder');
    expect(await metricValue(registry, 'relay_k8s_leadership_changes_total', { event: 'lost' })).toBe(1);
    expect(await metricValue(registry, 'relay_k8s_leader')).toBe(0);
  });

  it('two contenders racing to update the same resourceVersion: one wins, one gets 409', async () => {
    const lease = await admin('POST', leasesPath, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: LEASE },
      spec: { holderIdentity: '', leaseDurationSeconds: 1 },
    });
    const x = { ...lease, spec: { ...lease.spec, holderIdentity: 'x' } };
    const y = { ...lease, spec: { ...lease.spec, holderIdentity: 'y' } };
    const path = `${leasesPath}/${LEASE}`;
    const results = await Promise.all([rest.request('PUT', path, x), rest.request('PUT', path, y)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    // The elector takes over a lease someone else holds once it has not changed for its duration (1 s here).
    const c = contender('pod-c_5');
    await expect.poll(() => c.isLeader(), { timeout: 10_000 }).toBe(true);
    const taken = await readLease();
    expect(taken.spec.holderIdentity).toBe('pod-c_5');
    expect(taken.spec.leaseTransitions).toBe(1);
  });
});

describe('rebalancing through startKubernetes', () => {
  it('only the leader asks overloaded pods to shed, with the right counts', async () => {
    const load = async (): Promise<InstanceLoad[]> => [
      { instance: 'instance-1', podName: 'elsewhere-1', peers: 900 },
      { instance: 'instance-2', podName: 'elsewhere-2', peers: 900 },
      { instance: 'instance-3', podName: 'elsewhere-3', peers: 0 },
    ];
    // Rounds run when the test steps them: what each one did is exact.
    const timers = [new SteppedTimers(), new SteppedTimers()] as const;
    const one = await start('relay-1', { peers: load, rebalance: true, timers: timers[0] });
    const two = await start('relay-2', { peers: load, rebalance: true, timers: timers[1] });
    await expect.poll(() => one.k8s.isLeader() || two.k8s.isLeader(), { timeout: 10_000 }).toBe(true);
    const [leader, follower] = one.k8s.isLeader() ? [one, two] : [two, one];
    const [leaderTimers, followerTimers] = one.k8s.isLeader() ? timers : [timers[1], timers[0]];
    // The follower's round asks nothing and comes back at the interval.
    expect(await followerTimers.step()).toBe(300);
    expect(follower.rec.shed).toEqual([]);
    // The leader's round sheds, then waits the cooldown before the next.
    expect(await leaderTimers.step()).toBe(60_000);
    expect(leader.rec.shed).toEqual([
      ['instance-1', 300, 5_000],
      ['instance-2', 300, 5_000],
    ]);
    expect(await metricValue(leader.rec.registry, 'relay_rebalance_shed_requested_total')).toBe(600);
    expect(await metricValue(leader.rec.registry, 'relay_rebalance_imbalance_ratio')).toBeCloseTo(1.5);
  });
});

function statusWithToken(token: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        ca: readFileSync(server.caFile),
        headers: { Authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('in-cluster configuration', () => {
  it('detects the pod environment and talks to the API with the mounted service account', async () => {
    const dir = tempDir('nb-sa-');
    writeFileSync(join(dir, 'token'), readFileSync(sa.tokenFile));
    writeFileSync(join(dir, 'ca.crt'), readFileSync(server.caFile));
    writeFileSync(join(dir, 'namespace'), NS);
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) };
    expect(detectInCluster(env, dir)).toBe(true);
    const kc = inClusterKubeConfig(env, dir);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe(NS);
    const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: NS });
    expect(Array.isArray(slices.items)).toBe(true);
    // The Role does not reach other namespaces.
    await expect(
      kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' }),
    ).rejects.toMatchObject({
      code: 403,
    });
  });
});

describe('service-account token rotation', () => {
  it('uses a rotated token at once, after the old one was revoked', { timeout: 60_000 }, async () => {
    const rotating = await server.serviceAccountKubeConfig(NS, 'relay-nb-cluster-relay');
    await rotating.rotate('binding-1');
    const core = rotating.kubeConfig.makeApiClient(CoreV1Api);
    await core.listNamespacedPod({ namespace: NS });
    const oldToken = readFileSync(rotating.tokenFile, 'utf8');
    await rotating.rotate('binding-2');
    await admin('DELETE', `/api/v1/namespaces/${NS}/secrets/binding-1`); // revokes the first token
    // The old token is really dead now (so a client still sending it would fail)...
    // (the API server caches token reviews for up to 10 s).
    await expect
      .poll(() => statusWithToken(oldToken, `/api/v1/namespaces/${NS}/pods`), {
        timeout: 20_000,
        interval: 500,
      })
      .toBe(401);
    // ...and the client has already switched to the new one.
    await expect(core.listNamespacedPod({ namespace: NS })).resolves.toBeTruthy();
    await admin('DELETE', `/api/v1/namespaces/${NS}/secrets/binding-2`);
    await expect
      .poll(
        () =>
          core.listNamespacedPod({ namespace: NS }).then(
            () => 200,
            (e: any) => e.code,
          ),
        {
          timeout: 20_000,
          interval: 500,
        },
      )
      .toBe(401);
  });
});

describe('watchdog and recovery', () => {
  it('relists after the API server is restarted, shows a broken watch in readiness and metrics meanwhile', async () => {
    const { k8s, rec } = await start('relay-self');
    await admin('POST', slicesPath, endpointSliceManifest('mesh-r', SERVICE, [['relay-a', '10.2.0.1']]));
    await expect.poll(() => latest(rec)).toEqual(['relay-a=10.2.0.1:7946']);
    expect(await metricValue(rec.registry, 'relay_k8s_watch_up', { resource: 'endpointslices' })).toBe(1);

    await server.killApiServer();
    await expect
      .poll(() => k8s.notReadyReason(), { timeout: 15_000 })
      .toMatch(/endpointslices watch failing/);
    expect(await metricValue(rec.registry, 'relay_k8s_watch_up', { resource: 'endpointslices' })).toBe(0);

    await server.startApiServer();
    await expect.poll(() => k8s.notReadyReason(), { timeout: 30_000 }).toBeUndefined();
    expect(await metricValue(rec.registry, 'relay_k8s_watch_up', { resource: 'endpointslices' })).toBe(1);
    expect(
      await metricValue(rec.registry, 'relay_k8s_watch_relists_total', {
        resource: 'endpointslices',
        reason: 'error',
      }),
    ).toBeGreaterThan(0);
    // The view follows changes made after the restart.
    await admin('POST', slicesPath, endpointSliceManifest('mesh-s', SERVICE, [['relay-b', '10.2.0.2']]));
    await expect
      .poll(() => latest(rec), { timeout: 10_000 })
      .toEqual(['relay-a=10.2.0.1:7946', 'relay-b=10.2.0.2:7946']);
    await admin('DELETE', `${slicesPath}/mesh-r`);
    await admin('DELETE', `${slicesPath}/mesh-s`);
  }, 90_000);

  it('a silently stalled API server (SIGSTOP) trips the watchdog; the watch recovers on resume', async () => {
    const { k8s, rec } = await start('relay-self');
    await admin('POST', slicesPath, endpointSliceManifest('mesh-t', SERVICE, [['relay-a', '10.3.0.1']]));
    await expect.poll(() => latest(rec)).toEqual(['relay-a=10.3.0.1:7946']);
    server.pause();
    try {
      // No FIN, no RST: only the client-side watchdog can notice.
      await expect
        .poll(
          () =>
            metricValue(rec.registry, 'relay_k8s_watch_relists_total', {
              resource: 'endpointslices',
              reason: 'watchdog',
            }),
          {
            timeout: 20_000,
          },
        )
        .toBeGreaterThan(0);
      await expect.poll(() => k8s.notReadyReason(), { timeout: 20_000 }).toMatch(/watch failing/);
    } finally {
      server.resume();
    }
    await expect.poll(() => k8s.notReadyReason(), { timeout: 30_000 }).toBeUndefined();
    await admin('DELETE', `${slicesPath}/mesh-t`);
    await expect.poll(() => latest(rec), { timeout: 10_000 }).toEqual([]);
  }, 90_000);

  it('stops (so the relay can drain) even while the API server is stalled', async () => {
    const { k8s } = await start('relay-stalled-stop');
    await expect.poll(() => k8s.isLeader(), { timeout: 10_000 }).toBe(true);
    server.pause();
    try {
      // The Lease release cannot reach the server; close must still finish (the test's timeout bounds it).
      await k8s.close();
      expect(k8s.isLeader()).toBe(false);
    } finally {
      server.resume();
    }
  }, 30_000);
});
