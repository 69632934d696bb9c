import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiregistrationV1Api,
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLoadgen, startLoadgen, type LoadgenRun } from '../../bench/lib/loadgen.js';
import type { KubeApiServer } from '../k8s/support/kube-api-server.js';
import { KubeRest, type KubeManifest } from '../k8s/support/kube-rest.js';
import {
  CHART_DIR,
  ensureKubeTools,
  helm,
  KUBE_TOOLS_TIMEOUT_MS,
  parseYamlStream,
  REPO_ROOT,
  type KubeTools,
} from '../k8s/support/kube-tools.js';
import { TEST_SECRET } from '../support/in-process-relay.js';
import { RelayTestClient } from '../support/relay-test-client.js';
import { NODE_BIN_DIR, requireNodeBinaries } from './support/control-plane.js';
import { exchange } from './support/exchange.js';
import { podOfPeer } from './support/peer-pod.js';
import { NODE_IP, type KubeNode } from './support/kube-node.js';
import { NodeCluster, REDIS_IMAGE } from './support/node-cluster.js';
import { ensureImages, IMAGES_TIMEOUT_MS } from './support/oci-container.js';
import { timeSeriesSvg } from './support/time-series-svg.js';

/**
 * The HPA and Prometheus on a real node (support/kube-node.ts). metrics-server (tools/kube/build.sh)
 * runs inside the node, reads the kubelet's resource metrics and is registered as the
 * v1beta1.metrics.k8s.io APIService; the controller-manager's HPA controller scales the chart's
 * Deployment on the CPU the pods really use. Prometheus (Debian's package) runs inside the node too,
 * with a scrape config translated from the chart's ServiceMonitor (its targets from the selected
 * Services' EndpointSlices, see writeTargets) and the chart's PrometheusRule groups as its rules file.
 *
 * NB_RECORD_HPA=1 writes the recording to docs/k8s/hpa.{json,svg}; otherwise to a temp dir.
 */

const REDIS_SERVICE_IP = '10.96.0.50';
const RELEASE = 'relay';
const RELEASE_NS = 'relay';
const DEPLOYMENT = 'relay-nb-cluster-relay';
const RELAY_SELECTOR = 'app.kubernetes.io/name=nb-cluster-relay,app.kubernetes.io/component=relay';
const PROMETHEUS_PORT = 9090;
const METRICS_SERVER_PORT = 4443;
const MIN_REPLICAS = 2;
const MAX_REPLICAS = 3;
const KEPT_PEERS = 30;
/** Grafana's $__rate_interval for a 2 s scrape: at least four scrapes. */
const RATE_INTERVAL = '10s';

/** Alert inputs (the expression's left side) that return nothing here, and why. */
const EXPECTED_EMPTY_ALERT_INPUTS: Record<string, string> = {
  NbRelayPodsNotReady: 'reads kube-state-metrics (kube_deployment_*), which does not run here',
};

let tools: KubeTools;
let cluster: NodeCluster | undefined;
let api: KubeApiServer;
let node: KubeNode | undefined;
let core: CoreV1Api;
let apps: AppsV1Api;
let autoscaling: AutoscalingV2Api;
let custom: CustomObjectsApi;
let discovery: DiscoveryV1Api;
let kubeconfig: string;
let work: string;
let relayPort = 0;
let redisPort = 0;
let prometheusPort = 0;
let job = '';
let loadgen: LoadgenRun | undefined;
const clients: RelayTestClient[] = [];

beforeAll(
  async () => {
    tools = await ensureKubeTools();
    await ensureImages();
    requireNodeBinaries(['kubelet', 'kube-proxy', 'coredns', 'metrics-server']);
    buildLoadgen();
    work = mkdtempSync(join(tmpdir(), 'nb-hpa-test-'));
    cluster = await NodeCluster.start(tools, { aggregationLayer: true });
    api = cluster.api;
    node = cluster.node;
    kubeconfig = cluster.kubeconfig;
    const kc = api.adminKubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    autoscaling = kc.makeApiClient(AutoscalingV2Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    discovery = kc.makeApiClient(DiscoveryV1Api);
    await startMetricsServer(kc.makeApiClient(ApiregistrationV1Api));
    await installPrometheusCrds();
  },
  2 * KUBE_TOOLS_TIMEOUT_MS + IMAGES_TIMEOUT_MS,
);

afterAll(async () => {
  targetsLoop.stopped = true;
  await targetsLoop.done;
  loadgen?.child.kill('SIGKILL');
  for (const c of clients) c.terminate();
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 120_000);

async function until(
  check: () => Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * metrics-server inside the node (it reaches the kubelet at NODE_IP:10250); the API server, on the
 * host's loopback, reaches it through a socket bridge: its APIService names an ExternalName Service
 * "localhost" (the aggregator dials an ExternalName's host as is), at the bridge's port.
 */
async function startMetricsServer(registration: ApiregistrationV1Api): Promise<void> {
  const certDir = join(node!.dir, 'metrics-server');
  mkdirSync(certDir);
  node!.run('metrics-server', [
    join(NODE_BIN_DIR, 'metrics-server'),
    `--kubeconfig=${node!.kubeconfig}`,
    `--authentication-kubeconfig=${node!.kubeconfig}`,
    `--authorization-kubeconfig=${node!.kubeconfig}`,
    `--bind-address=${NODE_IP}`,
    `--secure-port=${METRICS_SERVER_PORT}`,
    `--cert-dir=${certDir}`,
    // the kubelet's serving certificate is self-signed (rotateCertificates: false)
    '--kubelet-insecure-tls',
    '--kubelet-preferred-address-types=InternalIP',
    // its floor; the kubelet request timeout must be shorter
    '--metric-resolution=10s',
    '--kubelet-request-timeout=5s',
    '--v=1',
  ]);
  const port = await node!.expose(NODE_IP, METRICS_SERVER_PORT);
  await core.createNamespacedService({
    namespace: 'kube-system',
    body: {
      metadata: { name: 'metrics-server' },
      spec: { type: 'ExternalName', externalName: 'localhost', ports: [{ name: 'https', port }] },
    },
  });
  await registration.createAPIService({
    body: {
      metadata: { name: 'v1beta1.metrics.k8s.io' },
      spec: {
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        service: { namespace: 'kube-system', name: 'metrics-server', port },
        // metrics-server's serving certificate is self-signed
        insecureSkipTLSVerify: true,
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    },
  });
  await until(
    async () => {
      const status = await registration.readAPIService({ name: 'v1beta1.metrics.k8s.io' });
      return status.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') ?? false;
    },
    () =>
      `metrics-server APIService Available\n${node!.logTail('metrics-server')}\n${readFileSync(join(api.dir, 'kube-apiserver.log'), 'utf8').slice(-2000)}`,
    120_000,
  );
}

async function installPrometheusCrds(): Promise<void> {
  const rest = new KubeRest(api);
  for (const file of readdirSync(tools.crdDir)) {
    const [crd] = (await parseYamlStream(
      tools,
      readFileSync(join(tools.crdDir, file), 'utf8'),
    )) as KubeManifest[];
    await rest.createOrFail(crd!, { real: true });
  }
  await until(async () => {
    const res = await rest.request('GET', '/apis/monitoring.coreos.com/v1');
    const kinds = res.status === 200 ? (res.body as { resources: { kind: string }[] }).resources : [];
    return kinds.some((r) => r.kind === 'ServiceMonitor') && kinds.some((r) => r.kind === 'PrometheusRule');
  }, 'prometheus-operator CRDs served');
}

async function ensureNamespace(name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
  await until(
    async () =>
      (await core.listNamespacedServiceAccount({ namespace: name })).items.some(
        (s) => s.metadata?.name === 'default',
      ),
    `default ServiceAccount in ${name}`,
    30_000,
  );
}

async function startRedis(): Promise<void> {
  await ensureNamespace('redis');
  const labels = { app: 'redis' };
  await apps.createNamespacedDeployment({
    namespace: 'redis',
    body: {
      metadata: { name: 'redis' },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
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
      spec: { clusterIP: REDIS_SERVICE_IP, selector: labels, ports: [{ port: 6379 }] },
    },
  });
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function relayPods(): Promise<V1Pod[]> {
  return (
    await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: RELAY_SELECTOR })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);
}

function podOf(peer: RelayTestClient): Promise<string> {
  return podOfPeer(redisPort, peer.peerKey);
}

/** A peer that reconnects through the Service whenever its connection closes, as a NetBird client does. */
class KeptPeer {
  client: RelayTestClient | undefined;
  reconnects = 0;
  #stopped = false;

  constructor(readonly identifier: string) {}

  async start(): Promise<void> {
    this.client = await this.#connect();
    void this.#watch(this.client);
  }

  #connect(): Promise<RelayTestClient> {
    return RelayTestClient.connect(`rel://127.0.0.1:${relayPort}`, {
      identifier: this.identifier,
      secret: TEST_SECRET,
    }).then((client) => {
      clients.push(client);
      return client;
    });
  }

  async #watch(client: RelayTestClient): Promise<void> {
    await client.closed;
    this.client = undefined;
    while (!this.#stopped) {
      try {
        this.client = await this.#connect();
        this.reconnects++;
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

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

function prometheusGet(path: string): Promise<{ status: string; data: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: prometheusPort, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as { status: string; data: unknown });
        } catch {
          reject(new Error(`prometheus ${path}: ${res.statusCode} ${body.slice(0, 300)}`));
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`prometheus ${path}: timeout`)));
    req.end();
  });
}

type PromRangeSeries = { metric: Record<string, string>; values: [number, string][] };

/** `expr` evaluated every 2 s from `startMs` to now. */
async function queryRange(expr: string, startMs: number): Promise<PromRangeSeries[]> {
  const range = `start=${startMs / 1000}&end=${Date.now() / 1000}&step=2`;
  const res = await prometheusGet(`/api/v1/query_range?query=${encodeURIComponent(expr)}&${range}`);
  if (res.status !== 'success') throw new Error(`query failed: ${expr}: ${res.error ?? ''}`);
  return (res.data as { result: PromRangeSeries[] }).result;
}

/** Whether `expr` had at least one sample between `startMs` and now. */
async function hadData(expr: string, startMs: number): Promise<boolean> {
  return (await queryRange(expr, startMs)).some((series) => series.values.length > 0);
}

async function query(expr: string): Promise<PromSample[]> {
  const res = await prometheusGet(`/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (res.status !== 'success') throw new Error(`query failed: ${expr}: ${res.error ?? ''}`);
  const data = res.data as { resultType: string; result: PromSample[] | [number, string] };
  return data.resultType === 'scalar'
    ? [{ metric: {}, value: data.result as [number, string] }]
    : (data.result as PromSample[]);
}

/**
 * The left operand of an alert's top-level comparison (`up{...} == 0` -> `up{...}`): the series
 * the alert reads, which must exist even while the alert does not fire.
 */
function alertInput(expr: string): string {
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') depth--;
    else if (depth === 0 && /^ (==|!=|<=|>=|<|>) /.test(expr.slice(i))) return expr.slice(0, i);
  }
  return expr;
}

type ServiceMonitor = {
  metadata: { namespace: string; name: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector: { matchNames: string[] };
    endpoints: { port: string; path: string; interval: string; scrapeTimeout: string }[];
  };
};

/**
 * What the prometheus-operator's kubernetes_sd config for a ServiceMonitor selects, done by the test:
 * Debian's Prometheus is built without kubernetes_sd ("field kubernetes_sd_configs not found"), so the
 * test lists the EndpointSlices of the Services the ServiceMonitor selects every 2 s and writes them
 * as a file_sd target file, with the labels the operator's relabelling gives (namespace, service, pod,
 * job = the Service's name, endpoint).
 */
async function writeTargets(serviceMonitor: ServiceMonitor, file: string): Promise<void> {
  const endpoint = serviceMonitor.spec.endpoints[0]!;
  const selector = Object.entries(serviceMonitor.spec.selector.matchLabels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const groups: { targets: string[]; labels: Record<string, string> }[] = [];
  for (const namespace of serviceMonitor.spec.namespaceSelector.matchNames) {
    for (const service of (await core.listNamespacedService({ namespace, labelSelector: selector })).items) {
      const name = service.metadata!.name!;
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${name}`,
      });
      for (const slice of slices.items) {
        const port = slice.ports?.find((p) => p.name === endpoint.port)?.port;
        if (!port) continue;
        for (const e of slice.endpoints) {
          groups.push({
            targets: e.addresses.map((a) => `${a}:${port}`),
            labels: {
              namespace,
              service: name,
              pod: e.targetRef?.name ?? '',
              job: name,
              endpoint: endpoint.port,
            },
          });
        }
      }
    }
  }
  writeFileSync(`${file}.tmp`, JSON.stringify(groups));
  renameSync(`${file}.tmp`, file);
}

let targetsLoop: { stopped: boolean; done?: Promise<void> } = { stopped: false };

async function startPrometheus(): Promise<void> {
  const serviceMonitor = (await custom.getNamespacedCustomObject({
    group: 'monitoring.coreos.com',
    version: 'v1',
    namespace: RELEASE_NS,
    plural: 'servicemonitors',
    name: DEPLOYMENT,
  })) as ServiceMonitor;
  const rule = (await custom.getNamespacedCustomObject({
    group: 'monitoring.coreos.com',
    version: 'v1',
    namespace: RELEASE_NS,
    plural: 'prometheusrules',
    name: DEPLOYMENT,
  })) as { spec: { groups: unknown[] } };
  const dir = join(node!.dir, 'prometheus');
  mkdirSync(dir);
  await writeTargets(serviceMonitor, join(dir, 'targets.json'));
  targetsLoop = { stopped: false };
  const loop = targetsLoop;
  loop.done = (async () => {
    while (!loop.stopped) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await writeTargets(serviceMonitor, join(dir, 'targets.json')).catch(() => undefined);
    }
  })();
  // JSON is YAML
  writeFileSync(join(dir, 'rules.yaml'), JSON.stringify({ groups: rule.spec.groups }));
  writeFileSync(
    join(dir, 'prometheus.yaml'),
    JSON.stringify({
      global: { scrape_interval: '2s', evaluation_interval: '2s' },
      rule_files: [join(dir, 'rules.yaml')],
      scrape_configs: [
        {
          job_name: `serviceMonitor/${serviceMonitor.metadata.namespace}/${serviceMonitor.metadata.name}/0`,
          scrape_interval: serviceMonitor.spec.endpoints[0]!.interval,
          scrape_timeout: serviceMonitor.spec.endpoints[0]!.scrapeTimeout,
          metrics_path: serviceMonitor.spec.endpoints[0]!.path,
          file_sd_configs: [{ files: [join(dir, 'targets.json')], refresh_interval: '2s' }],
        },
      ],
    }),
  );
  node!.run('prometheus', [
    tools.prometheus,
    `--config.file=${join(dir, 'prometheus.yaml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=${NODE_IP}:${PROMETHEUS_PORT}`,
    '--log.level=warn',
  ]);
  prometheusPort = await node!.expose(NODE_IP, PROMETHEUS_PORT);
}

interface Sample {
  t: number;
  replicas: number;
  readyReplicas: number;
  desiredReplicas: number;
  peersPerPod: Record<string, number>;
  cpuMillicoresPerPod: Record<string, number>;
}

/** Every ~2 s: the Deployment's replicas, relay_peers per pod (Prometheus), CPU per pod (metrics API). */
class Recorder {
  readonly samples: Sample[] = [];
  readonly start = Date.now();
  #stopped = false;
  #loop: Promise<void> | undefined;

  begin(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        await this.#sample().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    })();
  }

  async #sample(): Promise<void> {
    const deployment = await apps.readNamespacedDeployment({ name: DEPLOYMENT, namespace: RELEASE_NS });
    const hpa = await autoscaling.readNamespacedHorizontalPodAutoscaler({
      name: DEPLOYMENT,
      namespace: RELEASE_NS,
    });
    const peers: Record<string, number> = {};
    for (const s of await query(`relay_peers{namespace="${RELEASE_NS}",job="${job}"}`))
      peers[s.metric.pod!] = Number(s.value[1]);
    const cpu: Record<string, number> = {};
    const metrics = (await custom
      .listNamespacedCustomObject({
        group: 'metrics.k8s.io',
        version: 'v1beta1',
        namespace: RELEASE_NS,
        plural: 'pods',
        labelSelector: RELAY_SELECTOR,
      })
      .catch(() => ({ items: [] }))) as {
      items: { metadata: { name: string }; containers: { usage: { cpu: string } }[] }[];
    };
    for (const item of metrics.items) {
      cpu[item.metadata.name] = item.containers.reduce((sum, c) => sum + millicores(c.usage.cpu), 0);
    }
    this.samples.push({
      t: (Date.now() - this.start) / 1000,
      replicas: deployment.status?.replicas ?? 0,
      readyReplicas: deployment.status?.readyReplicas ?? 0,
      desiredReplicas: hpa.status?.desiredReplicas ?? 0,
      peersPerPod: peers,
      cpuMillicoresPerPod: cpu,
    });
  }

  async end(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

function millicores(quantity: string): number {
  if (quantity.endsWith('n')) return Number(quantity.slice(0, -1)) / 1e6;
  if (quantity.endsWith('u')) return Number(quantity.slice(0, -1)) / 1e3;
  if (quantity.endsWith('m')) return Number(quantity.slice(0, -1));
  return Number(quantity) * 1000;
}

const events: Record<string, number> = {};
let recorder: Recorder | undefined;
const peers: KeptPeer[] = [];
let podsBeforeScaleOut = new Set<string>();
let addedPod = '';

describe('the HPA and Prometheus on a real node', () => {
  it('helm install with autoscaling, ServiceMonitor and PrometheusRule; metrics-server serves pod CPU; Prometheus scrapes every pod', async () => {
    await startRedis();
    const values = join(work, 'values.yaml');
    writeFileSync(
      values,
      JSON.stringify({
        image: { repository: 'localhost/nb-cluster-relay', tag: 'test', pullPolicy: 'Never' },
        relay: { exposedAddress: 'rel://relay.test:443', drainWindowSeconds: 2 },
        auth: { secret: TEST_SECRET },
        cluster: { redis: { url: `redis://${REDIS_SERVICE_IP}:6379/0` } },
        service: { type: 'ClusterIP' },
        preStopSleepSeconds: 1,
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
        autoscaling: {
          enabled: true,
          minReplicas: MIN_REPLICAS,
          maxReplicas: MAX_REPLICAS,
          targetCPUUtilizationPercentage: 30,
          // as fast as the controllers allow: one pod at a time, short windows
          behavior: {
            scaleUp: {
              stabilizationWindowSeconds: 0,
              policies: [{ type: 'Pods', value: 1, periodSeconds: 5 }],
            },
            scaleDown: {
              stabilizationWindowSeconds: 15,
              policies: [{ type: 'Pods', value: 1, periodSeconds: 10 }],
            },
          },
        },
        kubernetes: {
          rebalance: {
            intervalSeconds: 5,
            cooldownSeconds: 10,
            windowSeconds: 5,
            minExcess: 3,
            maxFraction: '0.5',
          },
        },
        metrics: {
          serviceMonitor: { enabled: true, intervalSeconds: 2, scrapeTimeoutSeconds: 1 },
          prometheusRule: { enabled: true },
        },
      }),
    );
    const installStarted = Date.now();
    await helm(tools, [
      'install',
      RELEASE,
      CHART_DIR,
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${RELEASE_NS}`,
      '--create-namespace',
      `--values=${values}`,
      '--wait',
      '--timeout=4m',
    ]);
    process.stderr.write(`[k8s-hpa] helm install --wait took ${Date.now() - installStarted} ms\n`);
    expect((await relayPods()).filter(isReady)).toHaveLength(MIN_REPLICAS);

    // metrics-server: the pods' CPU through the aggregated API, as the HPA controller reads it
    await expect
      .poll(
        async () => {
          const m = (await custom.listNamespacedCustomObject({
            group: 'metrics.k8s.io',
            version: 'v1beta1',
            namespace: RELEASE_NS,
            plural: 'pods',
            labelSelector: RELAY_SELECTOR,
          })) as { items: unknown[] };
          return m.items.length;
        },
        { timeout: 90_000, interval: 1_000 },
      )
      .toBe(MIN_REPLICAS);

    await startPrometheus();
    await expect
      .poll(
        async () => {
          const up = await query('up == 1').catch(() => []);
          job = up[0]?.metric.job ?? '';
          return up.length;
        },
        { timeout: 60_000, interval: 1_000 },
      )
      .toBe(MIN_REPLICAS);
    expect(job).toBe(`${DEPLOYMENT}-mesh`);

    redisPort = await node!.expose(REDIS_SERVICE_IP, 6379);
    const service = await core.readNamespacedService({ name: DEPLOYMENT, namespace: RELEASE_NS });
    relayPort = await node!.expose(service.spec!.clusterIP!, 443);
  }, 420_000);

  it('load through the Service scales the Deployment out; the rebalancer moves peers onto the new pod', async () => {
    for (let i = 0; i < KEPT_PEERS; i++) peers.push(new KeptPeer(`hpa-peer-${i}`));
    await Promise.all(peers.map((p) => p.start()));
    // first the HPA at rest: the pods' start-up CPU can scale the Deployment out on its own
    await expect
      .poll(
        async () => {
          const hpa = await autoscaling.readNamespacedHorizontalPodAutoscaler({
            name: DEPLOYMENT,
            namespace: RELEASE_NS,
          });
          const utilization = hpa.status?.currentMetrics?.[0]?.resource?.current?.averageUtilization ?? 100;
          return (
            hpa.status?.desiredReplicas === MIN_REPLICAS &&
            utilization < 30 &&
            (await relayPods()).filter(isReady).length === MIN_REPLICAS
          );
        },
        { timeout: 240_000, interval: 1_000 },
      )
      .toBe(true);
    podsBeforeScaleOut = new Set((await relayPods()).map((p) => p.metadata!.name!));
    recorder = new Recorder();
    recorder.begin();
    events.loadStarted = recorder.start;
    loadgen = startLoadgen('throughput', [
      `-send-urls=rel://127.0.0.1:${relayPort}`,
      '-pairs=4',
      '-size=1000',
      '-rate=4000',
      '-duration=600s',
      '-warmup=0s',
      `-secret=${TEST_SECRET}`,
    ]);
    // rejected when the generator is killed below: not a result of this test
    loadgen.result.catch(() => undefined);
    await expect
      .poll(async () => (await relayPods()).filter(isReady).length, { timeout: 300_000, interval: 1_000 })
      .toBe(MAX_REPLICAS);
    events.scaledOut = Date.now();
    addedPod = (await relayPods())
      .map((p) => p.metadata!.name!)
      .find((name) => !podsBeforeScaleOut.has(name))!;
    process.stderr.write(
      `[k8s-hpa] scale-out ${MIN_REPLICAS}->${MAX_REPLICAS} Ready ${events.scaledOut - events.loadStarted} ms after the load started\n`,
    );
    // the kept peers connected before the new pod existed: one there came back through the Service
    // after a pod shed it
    await expect
      .poll(
        async () =>
          (await Promise.all(peers.map((p) => (p.client ? podOf(p.client) : '')))).filter(
            (pod) => pod === addedPod,
          ).length,
        {
          timeout: 120_000,
          interval: 1_000,
        },
      )
      .toBeGreaterThan(0);
    events.peersMoved = Date.now();
    // the leader counts the shed request before the peer moves, but Prometheus sees it only at the
    // leader's next scrape (every 2 s): wait for that scrape
    await expect
      .poll(
        async () => {
          const shed = await query(
            `sum(relay_rebalance_shed_requested_total{namespace="${RELEASE_NS}",job="${job}"})`,
          );
          return Number(shed[0]?.value[1] ?? 0);
        },
        { timeout: 30_000, interval: 1_000 },
      )
      .toBeGreaterThan(0);
  }, 480_000);

  it('every dashboard panel query and every alert input returns data during the scale-out run (alert inputs listed as expected empty excepted), the session-closes panel shows the rebalance closes', async () => {
    const dashboard = JSON.parse(readFileSync(join(CHART_DIR, 'files/grafana-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const substitute = (expr: string): string =>
      expr
        .replaceAll('$namespace', RELEASE_NS)
        .replaceAll('$job', job)
        .replaceAll('$__rate_interval', RATE_INTERVAL);
    const panelQueries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => substitute(t.expr)));
    const rules = (await prometheusGet('/api/v1/rules')).data as {
      groups: { rules: { name: string; query: string; health: string; lastError?: string }[] }[];
    };
    const alerts = rules.groups.flatMap((g) => g.rules);
    const empty: string[] = [];
    // Over the run since the load started, not at one instant: a rate over 10 s of a counter that
    // moves in bursts (session closes during shedding) is empty most of the time.
    for (const expr of panelQueries) if (!(await hadData(expr, events.loadStarted!))) empty.push(expr);
    const emptyAlertInputs: string[] = [];
    for (const alert of alerts) {
      if ((await query(alertInput(alert.query))).length === 0) emptyAlertInputs.push(alert.name);
    }
    process.stderr.write(
      `[k8s-hpa] Prometheus: ${panelQueries.length - empty.length}/${panelQueries.length} panel queries with data, empty: ${JSON.stringify(empty)}; ${alerts.length - emptyAlertInputs.length}/${alerts.length} alert inputs with data, empty: ${JSON.stringify(emptyAlertInputs)}\n`,
    );
    expect(panelQueries.length).toBeGreaterThan(20);
    expect(alerts.length).toBe(9);
    expect(
      alerts.filter((a) => a.health !== 'ok').map((a) => `${a.name}: ${a.health} ${a.lastError ?? ''}`),
    ).toEqual([]);
    // Every panel, the session closes and mesh drops by reason included: the relay starts each
    // reason's counter at 0, so their rates have samples before the first close or drop.
    expect(empty).toEqual([]);
    // and the session-closes panel shows the rebalance's closes, not only its zeros (the busy pods'
    // next scrape after their closes may still be due)
    const closesPanel = panelQueries.find((expr) => expr.includes('relay_session_closes_total'))!;
    await expect
      .poll(
        async () =>
          (await queryRange(closesPanel, events.loadStarted!)).some(
            (series) =>
              series.metric.reason === 'rebalance' && series.values.some(([, value]) => Number(value) > 0),
          ),
        { timeout: 30_000, interval: 2_000 },
      )
      .toBe(true);
    expect(emptyAlertInputs.sort()).toEqual(Object.keys(EXPECTED_EMPTY_ALERT_INPUTS).sort());
  }, 120_000);

  it('load stops: the Deployment scales in and drains without losing a peer', async () => {
    loadgen!.child.kill('SIGTERM');
    events.loadStopped = Date.now();
    await expect
      .poll(
        async () =>
          (await core.listNamespacedPod({ namespace: RELEASE_NS, labelSelector: RELAY_SELECTOR })).items
            .length,
        { timeout: 300_000, interval: 1_000 },
      )
      .toBe(MIN_REPLICAS);
    events.scaledIn = Date.now();
    process.stderr.write(
      `[k8s-hpa] scale-in ${MAX_REPLICAS}->${MIN_REPLICAS} done (pod gone) ${events.scaledIn - events.loadStopped} ms after the load stopped\n`,
    );
    const current = new Set((await relayPods()).map((p) => p.metadata!.name!));
    // not lost: every kept peer is connected again, on a pod that is still there
    await expect
      .poll(
        async () => {
          const where = await Promise.all(peers.map((p) => (p.client ? podOf(p.client) : '')));
          return peers.filter((_, i) => !current.has(where[i]!)).map((p) => p.identifier);
        },
        { timeout: 60_000, interval: 1_000 },
      )
      .toEqual([]);
    for (let i = 0; i < peers.length; i += 2) {
      await exchange(peers[i]!.client!, peers[i + 1]!.client!, `after the scale-in ${i}`);
    }
    await recorder!.end();
    const reconnects = peers.reduce((sum, p) => sum + p.reconnects, 0);
    process.stderr.write(`[k8s-hpa] ${peers.length} kept peers, ${reconnects} reconnects, 0 lost\n`);
    writeRecording(reconnects);
  }, 420_000);

  it('an alert fires for real: Redis gone -> NbRelayRedisDown firing in /api/v1/alerts', async () => {
    await apps.patchNamespacedDeploymentScale({
      name: 'redis',
      namespace: 'redis',
      body: [{ op: 'replace', path: '/spec/replicas', value: 0 }],
    });
    const started = Date.now();
    await expect
      .poll(
        async () => {
          const alerts = (await prometheusGet('/api/v1/alerts')).data as {
            alerts: { labels: Record<string, string>; state: string }[];
          };
          return alerts.alerts.filter(
            (a) => a.labels.alertname === 'NbRelayRedisDown' && a.state === 'firing',
          ).length;
        },
        { timeout: 180_000, interval: 2_000 },
      )
      .toBe(MIN_REPLICAS);
    process.stderr.write(
      `[k8s-hpa] NbRelayRedisDown firing for every pod ${Date.now() - started} ms after Redis was scaled to 0\n`,
    );
  }, 240_000);
});

function writeRecording(reconnects: number): void {
  const r = recorder!;
  const at = (ms: number): number => (ms - r.start) / 1000;
  const pods = [
    ...new Set(
      r.samples.flatMap((s) => [...Object.keys(s.peersPerPod), ...Object.keys(s.cpuMillicoresPerPod)]),
    ),
  ];
  const short = (pod: string): string => pod.replace(`${DEPLOYMENT}-`, '');
  const markers = [
    { at: 0, label: 'load on' },
    { at: at(events.scaledOut!), label: `${MAX_REPLICAS} Ready` },
    { at: at(events.loadStopped!), label: 'load off' },
    { at: at(events.scaledIn!), label: `${MIN_REPLICAS} left` },
  ];
  const svg = timeSeriesSvg(
    `HPA on a real node: ${MIN_REPLICAS} -> ${MAX_REPLICAS} -> ${MIN_REPLICAS} relay pods`,
    [
      {
        title: 'Replicas',
        unit: 'pods',
        series: [
          { name: 'HPA desired', points: r.samples.map((s) => [s.t, s.desiredReplicas]) },
          { name: 'ready', points: r.samples.map((s) => [s.t, s.readyReplicas]) },
        ],
        markers,
      },
      {
        title: 'Peers per pod (relay_peers, Prometheus)',
        unit: 'peers',
        series: pods.map((pod) => ({
          name: short(pod),
          points: r.samples.filter((s) => pod in s.peersPerPod).map((s) => [s.t, s.peersPerPod[pod]!]),
        })),
        markers,
      },
      {
        title: 'CPU per pod (metrics-server)',
        unit: 'millicores',
        series: pods.map((pod) => ({
          name: short(pod),
          points: r.samples
            .filter((s) => pod in s.cpuMillicoresPerPod)
            .map((s) => [s.t, s.cpuMillicoresPerPod[pod]!]),
        })),
        markers,
      },
    ],
    `${KEPT_PEERS} reconnecting peers + 4 loadgen pairs at 4000 msg/s of 1000 B; CPU target 30% of 100m; ${reconnects} reconnects, 0 lost`,
  );
  const dir = process.env.NB_RECORD_HPA ? join(REPO_ROOT, 'docs/k8s') : work;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'hpa.json'),
    JSON.stringify(
      { events: Object.fromEntries(Object.entries(events).map(([k, v]) => [k, at(v)])), samples: r.samples },
      null,
      1,
    ) + '\n',
  );
  writeFileSync(join(dir, 'hpa.svg'), svg);
  process.stderr.write(`[k8s-hpa] recording in ${dir}/hpa.{json,svg}\n`);
}
