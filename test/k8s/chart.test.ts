import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { SETTINGS } from '../../src/config/settings.js';
import { K8S_SETTINGS } from '../../src/config/settings-k8s.js';
import { eventually } from '../support/eventually.js';
import { KubeApiServer } from './support/kube-api-server.js';
import { KubeRest, type KubeManifest } from './support/kube-rest.js';
import {
  CHART_DIR,
  ensureKubeTools,
  helm,
  KUBE_TOOLS_TIMEOUT_MS,
  parseYamlStream,
  REPO_ROOT,
  type KubeTools,
} from './support/kube-tools.js';
import { find, one, relayMetricsIn, renderChart, sourceMetricNames } from './support/render.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are untyped JSON */

const CI_VALUES = readdirSync(join(CHART_DIR, 'ci')).filter((f) => f.endsWith('.yaml'));
const PRODUCTION_VALUES = join(REPO_ROOT, 'deploy/values-production.yaml');
/** The ci/ files plus the example production values of deploy/. */
const ALL_VALUES = [...CI_VALUES, PRODUCTION_VALUES];
const label = (file: string): string => file.replace(/^.*\//, '').replace(/-values\.yaml$|\.yaml$/, '');
const MINIMAL = ['minimal-values.yaml'];

let tools: KubeTools;
beforeAll(async () => {
  tools = await ensureKubeTools();
}, KUBE_TOOLS_TIMEOUT_MS);

const container = (deployment: KubeManifest): any => (deployment as any).spec.template.spec.containers[0];
const envOf = (deployment: KubeManifest): Map<string, any> =>
  new Map(container(deployment).env.map((e: any) => [e.name, e]));

describe('helm lint and template', () => {
  it('has the realistic values files this suite promises', () => {
    expect(CI_VALUES).toEqual(
      expect.arrayContaining([
        'minimal-values.yaml',
        'cluster-hpa-values.yaml',
        'sentinel-values.yaml',
        'existing-secrets-values.yaml',
        'redis-cluster-values.yaml',
        'sentinel-auth-values.yaml',
        'standalone-values.yaml',
      ]),
    );
  });

  it.each(ALL_VALUES)('helm lint --strict passes with %s', async (file) => {
    const path = file.startsWith('/') ? file : join(CHART_DIR, 'ci', file);
    const { stdout } = await helm(tools, ['lint', '--strict', CHART_DIR, '-f', path]);
    expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('the pure defaults refuse to render and name what is missing', async () => {
    await expect(renderChart(tools)).rejects.toThrow(/relay\.exposedAddress is required/);
    await expect(renderChart(tools, { set: ['relay.exposedAddress=rels://r.example:443'] })).rejects.toThrow(
      /auth\.secret or auth\.existingSecret/,
    );
    await expect(
      renderChart(tools, { set: ['relay.exposedAddress=rels://r.example:443', 'auth.secret=x'] }),
    ).rejects.toThrow(/cluster\.redis\.url or cluster\.redis\.existingSecret/);
  });

  it('values.schema.json rejects unknown keys, bad enums and malformed addresses', async () => {
    await expect(renderChart(tools, { valuesFiles: MINIMAL, set: ['replicaCont=3'] })).rejects.toThrow(
      /replicaCont/,
    );
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['cluster.redis.mode=memcached'] }),
    ).rejects.toThrow(/mode/);
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['relay.exposedAddress=https://relay.example.com'] }),
    ).rejects.toThrow(/exposedAddress/);
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['kubernetes.rebalance.intervalSeconds=soon'] }),
    ).rejects.toThrow(/intervalSeconds/);
  });

  it('a grace period shorter than preStop + drain window is refused', async () => {
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['terminationGracePeriodSeconds=10'] }),
    ).rejects.toThrow(/terminationGracePeriodSeconds/);
  });
});

describe('chart output', () => {
  it('Deployment: downward API, restricted security, probes, drain and spread', async () => {
    const objects = await renderChart(tools, { valuesFiles: MINIMAL });
    const deployment = one(objects, 'Deployment', 'relay-nb-cluster-relay');
    const pod = (deployment as any).spec.template.spec;
    const c = container(deployment);
    const env = envOf(deployment);
    expect(env.get('NB_POD_NAME').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    expect(env.get('NB_POD_IP').valueFrom.fieldRef.fieldPath).toBe('status.podIP');
    expect(env.get('NB_POD_NAMESPACE').valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
    expect(env.get('NB_LISTEN_ADDRESS').value).toBe(':8080');
    expect(env.get('NB_EXPOSED_ADDRESS').value).toBe('rels://relay.example.com:443');
    expect(env.get('NB_AUTH_SECRET').valueFrom.secretKeyRef).toEqual({
      name: 'relay-nb-cluster-relay',
      key: 'auth-secret',
    });
    expect(env.get('NB_DRAIN_WINDOW').value).toBe('20s');
    expect(env.get('NB_K8S_HEADLESS_SERVICE').value).toBe('relay-nb-cluster-relay-mesh');
    expect(env.get('NB_K8S_LEASE_NAME').value).toBe('relay-nb-cluster-relay-leader');

    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.ports.find((p: any) => p.name === 'health').containerPort).toBe(9000);
    expect(c.lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
    // preStop 5 + drain 20 + 15 s margin.
    expect(pod.terminationGracePeriodSeconds).toBe(40);
    expect(pod.topologySpreadConstraints.map((t: any) => t.topologyKey)).toEqual([
      'topology.kubernetes.io/zone',
      'kubernetes.io/hostname',
    ]);
    expect(pod.automountServiceAccountToken).toBe(true);
    expect((deployment as any).spec.replicas).toBe(2);

    const drained = await renderChart(tools, {
      valuesFiles: MINIMAL,
      set: ['relay.drainWindowSeconds=90', 'preStopSleepSeconds=10'],
    });
    const drainedPod = (one(drained, 'Deployment', 'relay-nb-cluster-relay') as any).spec.template.spec;
    expect(drainedPod.terminationGracePeriodSeconds).toBe(115);
    expect(envOf(one(drained, 'Deployment', 'relay-nb-cluster-relay')).get('NB_DRAIN_WINDOW').value).toBe(
      '90s',
    );
  });

  it('every NB_* variable the chart sets is a real relay setting', async () => {
    const known = new Set<string>([
      ...Object.values(SETTINGS).map((s) => s.env),
      ...Object.values(K8S_SETTINGS).map((s) => s.env),
    ]);
    for (const file of ALL_VALUES) {
      const objects = await renderChart(tools, { valuesFiles: [file] });
      for (const deployment of find(objects, 'Deployment')) {
        const names = (container(deployment).env ?? []).map((e: any) => e.name as string);
        for (const name of names.filter((n: string) => n.startsWith('NB_'))) {
          expect(known, `${file}: ${deployment.metadata.name} sets ${name}`).toContain(name);
        }
      }
    }
  });

  it('Services: public relay port, headless mesh Service listing not-ready pods', async () => {
    const objects = await renderChart(tools, { valuesFiles: MINIMAL });
    const relay = one(objects, 'Service', 'relay-nb-cluster-relay') as any;
    expect(relay.spec.type).toBe('LoadBalancer');
    expect(relay.spec.ports).toEqual([
      { name: 'relay', port: 443, targetPort: 'relay', protocol: 'TCP', appProtocol: 'kubernetes.io/ws' },
    ]);
    const mesh = one(objects, 'Service', 'relay-nb-cluster-relay-mesh') as any;
    expect(mesh.spec.clusterIP).toBe('None');
    expect(mesh.spec.publishNotReadyAddresses).toBe(true);
    expect(mesh.spec.ports.find((p: any) => p.name === 'mesh').port).toBe(7946);
    expect(mesh.spec.selector).toEqual(relay.spec.selector);
  });

  it('RBAC: least rights for EndpointSlices, Pods and the one Lease', async () => {
    const objects = await renderChart(tools, { valuesFiles: MINIMAL });
    const role = one(objects, 'Role') as any;
    expect(role.rules).toEqual([
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['relay-nb-cluster-relay-leader'],
        verbs: ['get', 'update'],
      },
    ]);
    const binding = one(objects, 'RoleBinding') as any;
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'relay-nb-cluster-relay', namespace: 'relay' },
    ]);
    const noApi = await renderChart(tools, { valuesFiles: ['redis-cluster-values.yaml'] });
    expect(find(noApi, 'Role')).toEqual([]);
    expect((one(noApi, 'Deployment') as any).spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it.each([
    ['autoscaling.enabled', 'HorizontalPodAutoscaler', false],
    ['podDisruptionBudget.enabled', 'PodDisruptionBudget', true],
    ['metrics.serviceMonitor.enabled', 'ServiceMonitor', false],
    ['metrics.prometheusRule.enabled', 'PrometheusRule', false],
    ['dashboards.enabled', 'ConfigMap', false],
    ['networkPolicy.enabled', 'NetworkPolicy', false],
    ['ingress.enabled', 'Ingress', false],
  ] as const)('%s switches the %s (default %s)', async (key, kind, byDefault) => {
    const defaults = await renderChart(tools, { valuesFiles: MINIMAL });
    expect(find(defaults, kind).length > 0).toBe(byDefault);
    const on = await renderChart(tools, { valuesFiles: MINIMAL, set: [`${key}=true`] });
    expect(find(on, kind)).toHaveLength(1);
    const off = await renderChart(tools, { valuesFiles: MINIMAL, set: [`${key}=false`] });
    expect(find(off, kind)).toHaveLength(0);
  });

  it('HPA: CPU plus relay_peers per pod, a behavior block, and no fixed replicas', async () => {
    const objects = await renderChart(tools, { valuesFiles: ['cluster-hpa-values.yaml'] });
    const hpa = one(objects, 'HorizontalPodAutoscaler') as any;
    expect(hpa.spec).toMatchObject({ minReplicas: 3, maxReplicas: 30 });
    expect(hpa.spec.metrics).toEqual([
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } },
      },
      {
        type: 'Pods',
        pods: { metric: { name: 'relay_peers' }, target: { type: 'AverageValue', averageValue: '8000' } },
      },
    ]);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(600);
    expect((one(objects, 'Deployment', 'relay-nb-cluster-relay') as any).spec.replicas).toBeUndefined();
    expect(sourceMetricNames()).toContain('relay_peers');
  });

  it('Redis by URL, Sentinel or Cluster', async () => {
    const url = envOf(one(await renderChart(tools, { valuesFiles: MINIMAL }), 'Deployment'));
    expect(url.get('NB_REDIS_URL').valueFrom.secretKeyRef).toEqual({
      name: 'relay-nb-cluster-relay',
      key: 'redis-url',
    });
    expect(url.has('NB_REDIS_SENTINELS')).toBe(false);

    const sentinelObjects = await renderChart(tools, { valuesFiles: ['sentinel-values.yaml'] });
    const sentinel = envOf(one(sentinelObjects, 'Deployment'));
    expect(sentinel.get('NB_REDIS_SENTINELS').value).toBe(
      'redis-sentinel-0.redis-sentinel.redis.svc:26379,redis-sentinel-1.redis-sentinel.redis.svc:26379,redis-sentinel-2.redis-sentinel.redis.svc:26379',
    );
    expect(sentinel.get('NB_REDIS_SENTINEL_NAME').value).toBe('relay');
    expect(sentinel.has('NB_REDIS_URL')).toBe(false);
    expect(sentinel.get('NB_TLS_CERT_FILE').value).toBe('/etc/nb-cluster-relay/tls/tls.crt');
    expect(Object.keys((one(sentinelObjects, 'Secret') as any).data).sort()).toEqual([
      'auth-secret',
      'cluster-secret',
    ]);

    const cluster = envOf(
      one(await renderChart(tools, { valuesFiles: ['redis-cluster-values.yaml'] }), 'Deployment'),
    );
    expect(cluster.get('NB_REDIS_CLUSTER_NODES').value).toMatch(/^redis-cluster-0[^,]+:6379,redis-cluster-1/);
    expect(cluster.get('NB_K8S_ENABLED').value).toBe('false');
  });

  it('Redis credentials and TLS: from values into the chart Secret, or optional keys of an existing Secret', async () => {
    // Inline: the ACL user as a value, its password in the chart's Secret; the relay accepts the result.
    const inline = await renderChart(tools, { valuesFiles: ['redis-cluster-values.yaml'] });
    const secretData = (one(inline, 'Secret') as any).data as Record<string, string>;
    const decoded = (key: string): string => Buffer.from(secretData[key] ?? '', 'base64').toString();
    expect(decoded('redis-password')).toBe('rc-redis-password');
    const env = envOf(one(inline, 'Deployment'));
    expect(env.get('NB_REDIS_USERNAME').value).toBe('relay');
    expect(env.get('NB_REDIS_PASSWORD').valueFrom.secretKeyRef).toEqual({
      name: 'relay-nb-cluster-relay',
      key: 'redis-password',
    });
    expect(env.has('NB_REDIS_SENTINEL_PASSWORD')).toBe(false);
    expect(env.has('NB_REDIS_TLS')).toBe(false);
    const resolved: Record<string, string> = { NB_POD_NAME: 'relay-0', NB_POD_IP: '10.0.0.7' };
    for (const [name, entry] of env) {
      if (entry.value !== undefined) resolved[name] = entry.value;
      else if (entry.valueFrom?.secretKeyRef) resolved[name] = decoded(entry.valueFrom.secretKeyRef.key);
    }
    expect(loadConfig([], resolved).cluster?.redis).toMatchObject({
      clusterNodes: expect.arrayContaining([{ host: 'redis-cluster-0.redis-cluster.redis.svc', port: 6379 }]),
      username: 'relay',
      password: 'rc-redis-password',
    });

    // Bitnami-style Sentinel: both passwords from one existing Secret (keys optional), TLS with a CA.
    const existing = await renderChart(tools, { valuesFiles: ['sentinel-auth-values.yaml'] });
    expect(Object.keys((one(existing, 'Secret') as any).data).sort()).toEqual([
      'auth-secret',
      'cluster-secret',
    ]);
    const deployment = one(existing, 'Deployment');
    const sentinel = envOf(deployment);
    for (const name of ['NB_REDIS_PASSWORD', 'NB_REDIS_SENTINEL_PASSWORD']) {
      expect(sentinel.get(name).valueFrom.secretKeyRef).toEqual({
        name: 'redis',
        key: 'redis-password',
        optional: true,
      });
    }
    expect(sentinel.get('NB_REDIS_TLS').value).toBe('true');
    expect(sentinel.get('NB_REDIS_TLS_CA_FILE').value).toBe('/etc/nb-cluster-relay/redis-ca/ca.crt');
    expect(container(deployment).volumeMounts).toContainEqual({
      name: 'redis-ca',
      mountPath: '/etc/nb-cluster-relay/redis-ca',
      readOnly: true,
    });
    expect((deployment as any).spec.template.spec.volumes).toContainEqual({
      name: 'redis-ca',
      secret: { secretName: 'redis-crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });

    // An inline Sentinel password gets its own key; nothing about Redis auth without values.
    const sentinelInline = await renderChart(tools, {
      valuesFiles: ['sentinel-values.yaml'],
      set: ['cluster.redis.sentinelPassword=s-pw'],
    });
    const sentinelSecret = (one(sentinelInline, 'Secret') as any).data as Record<string, string>;
    expect(Buffer.from(sentinelSecret['redis-sentinel-password'] ?? '', 'base64').toString()).toBe('s-pw');
    const sentinelEnv = envOf(one(sentinelInline, 'Deployment'));
    expect(sentinelEnv.get('NB_REDIS_SENTINEL_PASSWORD').valueFrom.secretKeyRef).toEqual({
      name: 'relay-nb-cluster-relay',
      key: 'redis-sentinel-password',
    });
    expect(sentinelEnv.has('NB_REDIS_PASSWORD')).toBe(false);
    const minimal = envOf(one(await renderChart(tools, { valuesFiles: MINIMAL }), 'Deployment'));
    for (const name of [
      'NB_REDIS_USERNAME',
      'NB_REDIS_PASSWORD',
      'NB_REDIS_SENTINEL_PASSWORD',
      'NB_REDIS_TLS',
    ]) {
      expect(minimal.has(name)).toBe(false);
    }
  });

  it('Redis auth values the relay would refuse are refused at render time', async () => {
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['cluster.redis.sentinelPassword=x'] }),
    ).rejects.toThrow(/cluster\.redis\.sentinelPassword needs cluster\.redis\.mode=sentinel/);
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['cluster.redis.username=relay'] }),
    ).rejects.toThrow(/cluster\.redis\.username needs cluster\.redis\.password/);
    await expect(
      renderChart(tools, { valuesFiles: MINIMAL, set: ['cluster.redis.tls.enabled=true'] }),
    ).rejects.toThrow(/rediss:\/\//);
    await expect(
      renderChart(tools, { valuesFiles: ['sentinel-values.yaml'], set: ['cluster.redis.tls.caSecret=ca'] }),
    ).rejects.toThrow(/cluster\.redis\.tls\.caSecret needs cluster\.redis\.tls\.enabled/);
  });

  it('secrets from values or from existing Secrets', async () => {
    const inline = await renderChart(tools, { valuesFiles: MINIMAL });
    const secret = one(inline, 'Secret') as any;
    const decoded = Object.fromEntries(
      Object.entries(secret.data as Record<string, string>).map(([k, v]) => [
        k,
        Buffer.from(v, 'base64').toString(),
      ]),
    );
    expect(decoded['auth-secret']).toBe('minimal-auth-secret');
    expect(decoded['redis-url']).toBe('redis://redis-master.redis.svc:6379/0');
    expect(decoded['cluster-secret']).toMatch(/^[A-Za-z0-9]{48}$/); // generated when not given

    const existing = await renderChart(tools, { valuesFiles: ['existing-secrets-values.yaml'] });
    expect(find(existing, 'Secret')).toEqual([]);
    const env = envOf(one(existing, 'Deployment'));
    expect(env.get('NB_AUTH_SECRET').valueFrom.secretKeyRef).toEqual({
      name: 'netbird-relay-auth',
      key: 'secret',
    });
    expect(env.get('NB_CLUSTER_SECRET').valueFrom.secretKeyRef).toEqual({
      name: 'netbird-relay-cluster',
      key: 'mesh-secret',
    });
    expect(env.get('NB_REDIS_URL').valueFrom.secretKeyRef).toEqual({
      name: 'netbird-relay-redis',
      key: 'url',
    });
  });

  it('NetworkPolicy: the mesh port only from this release’s relay pods', async () => {
    const objects = await renderChart(tools, { valuesFiles: ['cluster-hpa-values.yaml'] });
    const policy = one(objects, 'NetworkPolicy') as any;
    const mesh = policy.spec.ingress.find((rule: any) => rule.ports.some((p: any) => p.port === 'mesh'));
    expect(mesh.from).toEqual([
      {
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'nb-cluster-relay',
            'app.kubernetes.io/instance': 'relay',
            'app.kubernetes.io/component': 'relay',
          },
        },
      },
    ]);
    const relay = policy.spec.ingress.find((rule: any) => rule.ports.some((p: any) => p.port === 'relay'));
    expect(relay.from).toBeUndefined();
    expect(policy.spec.podSelector).toEqual(mesh.from[0].podSelector);
  });

  it('Ingress on /relay; the prober and the helm test authenticate with the auth secret', async () => {
    const objects = await renderChart(tools, { valuesFiles: ['cluster-hpa-values.yaml'] });
    const ingress = one(objects, 'Ingress') as any;
    expect(ingress.spec.rules[0].http.paths[0]).toMatchObject({
      path: '/relay',
      backend: { service: { name: 'relay-nb-cluster-relay', port: { name: 'relay' } } },
    });
    const prober = one(objects, 'Deployment', 'relay-nb-cluster-relay-probe');
    expect(container(prober).args).toEqual([
      'probe',
      '--url',
      'rels://relay.example.com:443',
      '--metrics-port',
      '9091',
    ]);
    expect(container(prober).env).toEqual([
      {
        name: 'NB_AUTH_SECRET',
        valueFrom: { secretKeyRef: { name: 'relay-nb-cluster-relay', key: 'auth-secret' } },
      },
    ]);
    expect(find(objects, 'ServiceMonitor')).toHaveLength(2);
    const test = one(await renderChart(tools, { valuesFiles: MINIMAL }), 'Pod') as any;
    expect(test.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(test.spec.containers[0].args).toEqual([
      'probe',
      '--url',
      'rel://relay-nb-cluster-relay.relay.svc:443',
      '--once',
    ]);
  });

  it('PrometheusRule uses only metrics the relay exports and matches deploy/prometheus-rules.yaml', async () => {
    const objects = await renderChart(tools, {
      release: 'nb-cluster-relay',
      namespace: 'relay',
      set: [
        'relay.exposedAddress=rels://relay.example.com:443',
        'auth.secret=x',
        'cluster.redis.url=redis://redis:6379',
        'metrics.prometheusRule.enabled=true',
      ],
    });
    const rule = one(objects, 'PrometheusRule') as any;
    const alerts = rule.spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        'NbRelayRedisDown',
        'NbRelayMeshLinkDown',
        'NbRelayDropsRising',
        'NbRelayEventLagHigh',
        'NbRelayPodsNotReady',
        'NbRelayKubernetesWatchBroken',
      ]),
    );
    const known = sourceMetricNames();
    for (const group of rule.spec.groups) {
      for (const r of group.rules) {
        for (const metric of relayMetricsIn(r.expr))
          expect(known, `${r.alert} uses ${metric}`).toContain(metric);
      }
    }
    const [file] = (await parseYamlStream(
      tools,
      readFileSync(join(REPO_ROOT, 'deploy/prometheus-rules.yaml'), 'utf8'),
    )) as Array<{ groups: unknown }>;
    expect(file?.groups).toEqual(rule.spec.groups);
  });

  it('the Grafana dashboard ConfigMap carries the dashboard of deploy/, with real metric names', async () => {
    const objects = await renderChart(tools, { valuesFiles: MINIMAL, set: ['dashboards.enabled=true'] });
    const cm = one(objects, 'ConfigMap') as any;
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    const json = cm.data['nb-cluster-relay.json'] as string;
    const deployed = readFileSync(join(REPO_ROOT, 'deploy/grafana-dashboard.json'), 'utf8');
    expect(JSON.parse(json)).toEqual(JSON.parse(deployed));
    const known = sourceMetricNames();
    const exprs = (JSON.parse(deployed).panels as any[]).flatMap((p) =>
      p.targets.map((t: any) => t.expr as string),
    );
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs)
      for (const metric of relayMetricsIn(expr)) expect(known, expr).toContain(metric);
  });
});

describe('against a real kube-apiserver', () => {
  let server: KubeApiServer;
  let rest: KubeRest;

  beforeAll(async () => {
    tools ??= await ensureKubeTools();
    server = await KubeApiServer.start(tools);
    rest = new KubeRest(server);
    // prometheus-operator CRDs, from its Go module (ServiceMonitor, PrometheusRule).
    for (const file of readdirSync(tools.crdDir)) {
      const [crd] = (await parseYamlStream(
        tools,
        readFileSync(join(tools.crdDir, file), 'utf8'),
      )) as KubeManifest[];
      await rest.createOrFail(crd as KubeManifest, { real: true });
    }
    // Established CRDs are served under their group: wait for discovery to list both kinds.
    await eventually(
      async () => {
        const res = await rest.request('GET', '/apis/monitoring.coreos.com/v1');
        const kinds = res.status === 200 ? (res.body as any).resources.map((r: any) => r.kind) : [];
        return kinds.includes('ServiceMonitor') && kinds.includes('PrometheusRule');
      },
      30_000,
      'ServiceMonitor and PrometheusRule served',
    );
    rest.resetDiscovery();
  }, KUBE_TOOLS_TIMEOUT_MS);

  afterAll(async () => {
    await server?.stop();
  });

  it.each(ALL_VALUES)(
    'every manifest rendered with %s passes server-side dry-run with strict field validation',
    async (file) => {
      const namespace = `dry-${label(file)}`;
      await rest.ensureNamespace(namespace);
      const objects = await renderChart(tools, { valuesFiles: [file], namespace });
      expect(objects.length).toBeGreaterThan(4);
      for (const object of objects) {
        expect(object.metadata.namespace).toBe(namespace);
        await rest.createOrFail(object);
      }
    },
    60_000,
  );

  it('helm install and upgrade for real: NOTES render, the generated cluster secret survives upgrades', async () => {
    const namespace = 'helm-real';
    await rest.ensureNamespace(namespace);
    const kubeconfig = server.writeAdminKubeconfigFile();
    const common = ['relay', CHART_DIR, '-n', namespace, '--kubeconfig', kubeconfig];
    const values = ['-f', join(CHART_DIR, 'ci', 'minimal-values.yaml')];
    const install = await helm(tools, ['install', ...common, ...values]);
    expect(install.stdout).toMatch(/STATUS: deployed/);
    expect(install.stdout).toMatch(/Peers connect to: rels:\/\/relay\.example\.com:443/);
    expect(install.stdout).toMatch(/grace period 40 s/);
    const secretPath = `/api/v1/namespaces/${namespace}/secrets/relay-nb-cluster-relay`;
    const clusterSecret = async (): Promise<string> =>
      ((await rest.request('GET', secretPath)).body as any).data['cluster-secret'] as string;
    const generated = await clusterSecret();
    expect(Buffer.from(generated, 'base64').toString()).toMatch(/^[A-Za-z0-9]{48}$/);
    const upgrade = await helm(tools, ['upgrade', ...common, ...values, '--set', 'relay.logLevel=debug']);
    expect(upgrade.stdout).toMatch(/REVISION: 2/);
    expect(await clusterSecret()).toBe(generated);
    const deployment = (
      await rest.request('GET', `/apis/apps/v1/namespaces/${namespace}/deployments/relay-nb-cluster-relay`)
    ).body as any;
    const env = deployment.spec.template.spec.containers[0].env;
    expect(env.find((e: any) => e.name === 'NB_LOG_LEVEL').value).toBe('debug');
  });

  it('strict validation really rejects a misspelt field (the check is not a no-op)', async () => {
    await rest.ensureNamespace('dry-negative');
    const objects = await renderChart(tools, { valuesFiles: MINIMAL, namespace: 'dry-negative' });
    const service = structuredClone(one(objects, 'Service', 'relay-nb-cluster-relay-mesh')) as any;
    service.spec.publishNotReadyAddress = true;
    const res = await rest.create(service);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/publishNotReadyAddress/);
  });

  it('installs for real; the Role lets the service account do exactly what the relay needs', async () => {
    const namespace = 'rbac';
    await rest.ensureNamespace(namespace);
    const objects = await renderChart(tools, { valuesFiles: ['cluster-hpa-values.yaml'], namespace });
    for (const object of objects) {
      if (object.metadata.annotations && (object.metadata.annotations as any)['helm.sh/hook']) continue;
      await rest.createOrFail(object, { real: true });
    }
    const sa = `system:serviceaccount:${namespace}:relay-nb-cluster-relay`;
    const can = async (verb: string, group: string, resource: string, name?: string): Promise<boolean> => {
      const res = await rest.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: sa,
          resourceAttributes: { namespace, verb, group, resource, ...(name ? { name } : {}) },
        },
      });
      expect(res.status).toBe(201);
      return (res.body as any).status.allowed === true;
    };
    const lease = 'relay-nb-cluster-relay-leader';
    expect(await can('list', 'discovery.k8s.io', 'endpointslices')).toBe(true);
    expect(await can('watch', 'discovery.k8s.io', 'endpointslices')).toBe(true);
    expect(await can('watch', '', 'pods')).toBe(true);
    expect(await can('get', '', 'pods', 'relay-nb-cluster-relay-abc')).toBe(true);
    expect(await can('create', 'coordination.k8s.io', 'leases')).toBe(true);
    expect(await can('update', 'coordination.k8s.io', 'leases', lease)).toBe(true);
    // Least rights: nothing more.
    expect(await can('update', 'coordination.k8s.io', 'leases', 'kube-controller-manager')).toBe(false);
    expect(await can('delete', 'coordination.k8s.io', 'leases', lease)).toBe(false);
    expect(await can('delete', '', 'pods')).toBe(false);
    expect(await can('get', '', 'secrets')).toBe(false);
    expect(await can('create', 'discovery.k8s.io', 'endpointslices')).toBe(false);
    // The same rights checked by acting as the service account (impersonation).
    const asSa = rest.as(sa);
    expect(
      (await asSa.request('GET', `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`)).status,
    ).toBe(200);
    expect((await asSa.request('GET', `/api/v1/namespaces/${namespace}/secrets`)).status).toBe(403);
    expect((await asSa.request('GET', `/api/v1/namespaces/default/pods`)).status).toBe(403);
  });
});
