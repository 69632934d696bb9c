import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureKubeTools, KUBE_TOOLS_TIMEOUT_MS, REPO_ROOT, type KubeTools } from './support/kube-tools.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * The alert rules evaluated by Prometheus' own engine: promtool (Debian's
 * prometheus package, unpacked by tools/kube/prometheus.sh) checks deploy/prometheus-rules.yaml
 * (identical to the chart's PrometheusRule, see chart.test.ts) and runs rule unit
 * tests over synthetic series named exactly as the relay exports them. Each alert is
 * shown firing for the pod in trouble only, and not firing before its `for:` delay.
 */

const execFileAsync = promisify(execFile);
const RULES = join(REPO_ROOT, 'deploy/prometheus-rules.yaml');
const SCRAPE = 'namespace="relay",job="nb-cluster-relay-mesh"';
const POD_A = { namespace: 'relay', pod: 'relay-a' };

let tools: KubeTools;
beforeAll(async () => {
  tools = await ensureKubeTools();
}, KUBE_TOOLS_TIMEOUT_MS);

interface ExpectedAlert {
  exp_labels: Record<string, string>;
  exp_annotations: Record<string, string>;
}
interface RuleTest {
  interval: string;
  input_series: Array<{ series: string; values: string }>;
  alert_rule_test: Array<{ eval_time: string; alertname: string; exp_alerts: ExpectedAlert[] }>;
}

/** Runs promtool's rule unit tests; resolves with its output, rejects with it on any failure. */
async function promtoolTest(tests: RuleTest[]): Promise<string> {
  const dir = tempDir('nb-promtool-');
  const spec = join(dir, 'tests.yaml');
  // JSON is YAML.
  writeFileSync(spec, JSON.stringify({ rule_files: [RULES], evaluation_interval: '1m', tests }));
  try {
    const { stdout, stderr } = await execFileAsync(tools.promtool, ['test', 'rules', spec]);
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`promtool test rules failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

const series = (name: string, labels: string, values: string) => ({
  series: `${name}{${SCRAPE},${labels}}`,
  values,
});

describe('alert rules under Prometheus', () => {
  it('promtool accepts the rule file', async () => {
    const { stdout } = await execFileAsync(tools.promtool, ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: 9 rules found/);
  });

  it('a failing expectation makes promtool fail (the runner can tell)', async () => {
    await expect(
      promtoolTest([
        {
          interval: '1m',
          input_series: [series('relay_cluster_redis_up', 'pod="relay-a"', '1x10')],
          alert_rule_test: [
            {
              eval_time: '5m',
              alertname: 'NbRelayRedisDown',
              exp_alerts: [{ exp_labels: { severity: 'critical', ...POD_A }, exp_annotations: {} }],
            },
          ],
        },
      ]),
    ).rejects.toThrow(/FAILED/);
  });

  it('Redis down, subscription down, watch broken, no leader, target down: the affected pod only, after `for`', async () => {
    const downFrom2m = '1 1 0x10';
    await promtoolTest([
      {
        interval: '1m',
        input_series: [
          series('relay_cluster_redis_up', 'pod="relay-a"', downFrom2m),
          series('relay_cluster_redis_up', 'pod="relay-b"', '1x12'),
          series('relay_registry_event_subscription_up', 'pod="relay-a"', downFrom2m),
          series('relay_registry_event_subscription_up', 'pod="relay-b"', '1x12'),
          series('relay_k8s_watch_up', 'pod="relay-a",resource="pods"', downFrom2m),
          series('relay_k8s_watch_up', 'pod="relay-a",resource="endpointslices"', '1x12'),
          series('relay_k8s_leader', 'pod="relay-a"', '0x12'),
          series('relay_k8s_leader', 'pod="relay-b"', '1 1 0x10'),
          series('up', 'pod="relay-a"', downFrom2m),
          series('up', 'pod="relay-b"', '1x12'),
        ],
        alert_rule_test: [
          // Down for 1 minute at 3m: RedisDown's `for: 1m` is not over yet.
          { eval_time: '2m', alertname: 'NbRelayRedisDown', exp_alerts: [] },
          {
            eval_time: '4m',
            alertname: 'NbRelayRedisDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', ...POD_A },
                exp_annotations: {
                  summary: 'Relay pod relay-a lost its Redis connection',
                  description:
                    'Existing sessions keep relaying over cached routes, but the pod is not ready and new registrations wait for Redis.',
                },
              },
            ],
          },
          { eval_time: '3m', alertname: 'NbRelayEventSubscriptionDown', exp_alerts: [] },
          {
            eval_time: '5m',
            alertname: 'NbRelayEventSubscriptionDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'critical', ...POD_A },
                exp_annotations: {
                  summary: 'Relay pod relay-a receives no peer events',
                  description: "The pod's Redis pub/sub subscription is down; it resyncs when it returns.",
                },
              },
            ],
          },
          { eval_time: '6m', alertname: 'NbRelayKubernetesWatchBroken', exp_alerts: [] },
          {
            eval_time: '8m',
            alertname: 'NbRelayKubernetesWatchBroken',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', ...POD_A, resource: 'pods' },
                exp_annotations: {
                  summary: 'Relay pod relay-a cannot watch pods',
                  description:
                    "Sibling discovery or the pod-deletion watch has not recovered (the pod stays ready; deleted pods are reaped on heartbeat expiry meanwhile); check the API server and the chart's Role.",
                },
              },
            ],
          },
          // relay-b led until 2m: no leader from then on, alert after 5 minutes of that.
          { eval_time: '6m', alertname: 'NbRelayNoLeader', exp_alerts: [] },
          {
            eval_time: '8m',
            alertname: 'NbRelayNoLeader',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', namespace: 'relay' },
                exp_annotations: {
                  summary: 'No relay pod holds the leader Lease in relay',
                  description:
                    "Connection rebalancing is paused (relaying and clean-up of dead pods go on); check the Lease and the chart's Role.",
                },
              },
            ],
          },
          {
            eval_time: '8m',
            alertname: 'NbRelayTargetDown',
            exp_alerts: [
              {
                exp_labels: {
                  severity: 'warning',
                  ...POD_A,
                  job: 'nb-cluster-relay-mesh',
                },
                exp_annotations: {
                  summary: 'Prometheus cannot scrape relay pod relay-a',
                  description: 'The metrics endpoint of relay/relay-a has been unreachable for 5 minutes.',
                },
              },
            ],
          },
        ],
      },
    ]);
  });

  it('mesh link down: a pod with fewer links than other live pods, not one that merely counts a pod that left', async () => {
    await promtoolTest([
      {
        interval: '1m',
        input_series: [
          // Three live members; relay-c reaches only one of the two others.
          ...['relay-a', 'relay-b', 'relay-c'].map((pod) =>
            series('relay_cluster_members', `pod="${pod}"`, '3x10'),
          ),
          series('relay_mesh_links_up', 'pod="relay-a"', '2x10'),
          series('relay_mesh_links_up', 'pod="relay-b"', '2x10'),
          series('relay_mesh_links_up', 'pod="relay-c"', '1x10'),
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'NbRelayMeshLinkDown', exp_alerts: [] },
          {
            eval_time: '6m',
            alertname: 'NbRelayMeshLinkDown',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', namespace: 'relay', pod: 'relay-c' },
                exp_annotations: {
                  summary: 'Relay pod relay-c has fewer mesh links than there are other live pods',
                  description:
                    'Traffic between peers on this pod and the unlinked pods is dropped. Check NetworkPolicy, the cluster secret and the mesh port.',
                },
              },
            ],
          },
        ],
      },
      {
        interval: '1m',
        input_series: [
          // A pod went away: members and links drop together, nothing is wrong.
          ...['relay-a', 'relay-b'].map((pod) => series('relay_cluster_members', `pod="${pod}"`, '3 3 2x8')),
          series('relay_mesh_links_up', 'pod="relay-a"', '2 2 1x8'),
          series('relay_mesh_links_up', 'pod="relay-b"', '2 2 1x8'),
        ],
        alert_rule_test: [{ eval_time: '9m', alertname: 'NbRelayMeshLinkDown', exp_alerts: [] }],
      },
    ]);
  });

  it('drops rising and event lag high: rates and the p99 from real counter and histogram shapes', async () => {
    await promtoolTest([
      {
        interval: '1m',
        input_series: [
          // 100 drops/s on relay-a, 10/s on relay-b (threshold 50/s).
          series('relay_dropped_messages_total', 'pod="relay-a",reason="queue_full"', '0+6000x20'),
          series('relay_dropped_messages_total', 'pod="relay-b",reason="queue_full"', '0+600x20'),
          // relay-a: every event between 1 s and 5 s late; relay-b: all under 0.1 s.
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-a",le="0.1"', '0x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-a",le="1"', '0x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-a",le="5"', '0+600x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-a",le="+Inf"', '0+600x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-b",le="0.1"', '0+600x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-b",le="1"', '0+600x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-b",le="5"', '0+600x20'),
          series('relay_registry_event_lag_seconds_bucket', 'pod="relay-b",le="+Inf"', '0+600x20'),
        ],
        alert_rule_test: [
          { eval_time: '9m', alertname: 'NbRelayDropsRising', exp_alerts: [] },
          {
            eval_time: '15m',
            alertname: 'NbRelayDropsRising',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', ...POD_A },
                exp_annotations: {
                  summary: 'Relay pod relay-a drops 100 messages/s',
                  description:
                    'Messages are dropped (slow receivers, full queues or unknown destinations); see relay_dropped_messages_total by reason.',
                },
              },
            ],
          },
          {
            eval_time: '15m',
            alertname: 'NbRelayEventLagHigh',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', ...POD_A },
                exp_annotations: {
                  summary: 'Peer events reach relay pod relay-a late (p99 4.96s)',
                  description: 'Online/offline notices are delayed; Redis or the pod is overloaded.',
                },
              },
            ],
          },
        ],
      },
    ]);
  });

  it('pods not ready: available below wanted for 10 minutes (kube-state-metrics)', async () => {
    const deployment = 'namespace="relay",deployment="nb-cluster-relay"';
    await promtoolTest([
      {
        interval: '1m',
        input_series: [
          { series: `kube_deployment_spec_replicas{${deployment}}`, values: '3x15' },
          { series: `kube_deployment_status_replicas_available{${deployment}}`, values: '3 3 2x13' },
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'NbRelayPodsNotReady', exp_alerts: [] },
          {
            eval_time: '13m',
            alertname: 'NbRelayPodsNotReady',
            exp_alerts: [
              {
                exp_labels: { severity: 'warning', namespace: 'relay', deployment: 'nb-cluster-relay' },
                exp_annotations: {
                  summary: 'relay/nb-cluster-relay has pods that are not ready',
                  description:
                    'Fewer relay pods are available than wanted (kube-state-metrics). A pod is not ready while Redis or its event subscription is down, or while it drains.',
                },
              },
            ],
          },
        ],
      },
    ]);
  });
});
