import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { detectInCluster } from '../../src/k8s/kube-config.js';
import { k8sSettingsFromEnv } from '../../src/k8s/k8s-settings.js';
import { siblingsFromSlices } from '../../src/k8s/sibling-discovery.js';
import { tempDir } from '../support/temp-dir.js';

type Conditions = { ready?: boolean; serving?: boolean; terminating?: boolean };
const endpoint = (pod: string, ip: string, conditions: Conditions = { ready: true }) => ({
  addresses: [ip],
  conditions,
  targetRef: { kind: 'Pod', name: pod, namespace: 'ns' },
});
const slice = (
  name: string,
  endpoints: ReturnType<typeof endpoint>[],
  ports = [{ name: 'mesh', port: 7946 }],
  addressType = 'IPv4',
): V1EndpointSlice => ({ metadata: { name }, addressType, endpoints, ports });

const selection = { selfPodName: 'relay-self', portName: 'mesh' };

describe('siblingsFromSlices', () => {
  it('merges all slices, drops this pod, sorts by pod name', () => {
    const siblings = siblingsFromSlices(
      [
        slice('s1', [endpoint('relay-c', '10.0.0.3'), endpoint('relay-self', '10.0.0.9')]),
        slice('s2', [endpoint('relay-a', '10.0.0.1')]),
      ],
      selection,
    );
    expect(siblings).toEqual([
      { podName: 'relay-a', address: '10.0.0.1:7946', ready: true },
      { podName: 'relay-c', address: '10.0.0.3:7946', ready: true },
    ]);
  });

  it('honours serving over ready (publishNotReadyAddresses) and keeps terminating pods listed, not ready', () => {
    const siblings = siblingsFromSlices(
      [
        slice('s', [
          endpoint('relay-a', '10.0.0.1', { ready: true, serving: false }),
          endpoint('relay-b', '10.0.0.2', { ready: true, serving: true, terminating: true }),
          endpoint('relay-c', '10.0.0.3', {}),
          endpoint('relay-d', '10.0.0.4', { ready: false }),
        ]),
      ],
      selection,
    );
    expect(siblings.map((s) => [s.podName, s.ready])).toEqual([
      ['relay-a', false],
      ['relay-b', false],
      ['relay-c', true], // unknown state is ready, as the API documents
      ['relay-d', false],
    ]);
  });

  it('lists a pod present in two slices once, ready if either says so; brackets IPv6', () => {
    const siblings = siblingsFromSlices(
      [
        slice('old', [endpoint('relay-a', '10.0.0.1', { ready: false })]),
        slice('new', [endpoint('relay-a', '10.0.0.1', { ready: true })]),
        slice('v6', [endpoint('relay-b', 'fd00::2')], [{ name: 'mesh', port: 7946 }], 'IPv6'),
      ],
      selection,
    );
    expect(siblings).toEqual([
      { podName: 'relay-a', address: '10.0.0.1:7946', ready: true },
      { podName: 'relay-b', address: '[fd00::2]:7946', ready: true },
    ]);
  });

  it('uses the named mesh port, skips slices without it, FQDN slices and endpoints without a pod', () => {
    const siblings = siblingsFromSlices(
      [
        slice(
          'metrics-first',
          [endpoint('relay-a', '10.0.0.1')],
          [
            { name: 'metrics', port: 9090 },
            { name: 'mesh', port: 7000 },
          ],
        ),
        slice('no-mesh', [endpoint('relay-b', '10.0.0.2')], [{ name: 'metrics', port: 9090 }]),
        slice('fqdn', [endpoint('relay-c', 'relay-c.example')], [{ name: 'mesh', port: 7946 }], 'FQDN'),
        {
          metadata: { name: 'no-ref' },
          addressType: 'IPv4',
          endpoints: [{ addresses: ['10.0.0.5'] }],
          ports: [{ name: 'mesh', port: 7946 }],
        },
      ],
      selection,
    );
    expect(siblings).toEqual([{ podName: 'relay-a', address: '10.0.0.1:7000', ready: true }]);
  });
});

describe('k8sSettingsFromEnv', () => {
  const saDir = (): string => {
    const dir = tempDir('nb-sa-');
    writeFileSync(join(dir, 'token'), 'token');
    writeFileSync(join(dir, 'namespace'), 'relay-ns\n');
    return dir;
  };
  const inCluster = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it('is off outside a cluster unless forced, and forcing it outside a cluster is an error', () => {
    const empty = tempDir('nb-sa-');
    expect(detectInCluster({}, empty)).toBe(false);
    expect(k8sSettingsFromEnv({}, empty)).toBeUndefined();
    expect(k8sSettingsFromEnv({ ...inCluster }, empty)).toBeUndefined(); // no token mounted
    expect(() => k8sSettingsFromEnv({ NB_K8S_ENABLED: 'true' }, empty)).toThrow(/NB_K8S_ENABLED/);
    expect(k8sSettingsFromEnv({ ...inCluster, NB_K8S_ENABLED: 'false' }, saDir())).toBeUndefined();
  });

  it('reads the chart settings with defaults, the namespace from the service account', () => {
    const settings = k8sSettingsFromEnv(
      {
        ...inCluster,
        NB_POD_NAME: 'relay-1',
        NB_K8S_HEADLESS_SERVICE: 'relay-mesh',
        NB_REBALANCE_WINDOW: '90s',
      },
      saDir(),
    );
    expect(settings).toMatchObject({
      namespace: 'relay-ns',
      podName: 'relay-1',
      headlessService: 'relay-mesh',
      meshPortName: 'mesh',
      leaseName: 'relay-mesh-leader',
      rebalance: {
        enabled: true,
        timing: { shedWindowMs: 90_000, intervalMs: 30_000 },
        policy: { tolerance: 0.2 },
      },
    });
  });

  it('names the setting in every error', () => {
    const dir = saDir();
    const base = { ...inCluster, NB_K8S_HEADLESS_SERVICE: 'svc' };
    expect(() => k8sSettingsFromEnv({ ...inCluster }, dir)).toThrow(/NB_K8S_HEADLESS_SERVICE/);
    expect(() => k8sSettingsFromEnv({ ...base, NB_REBALANCE_INTERVAL: 'soon' }, dir)).toThrow(
      /NB_REBALANCE_INTERVAL/,
    );
    expect(() => k8sSettingsFromEnv({ ...base, NB_REBALANCE_MAX_FRACTION: '2' }, dir)).toThrow(
      /NB_REBALANCE_MAX_FRACTION/,
    );
    expect(() => k8sSettingsFromEnv({ ...base, NB_REBALANCE_ENABLED: 'maybe' }, dir)).toThrow(
      /NB_REBALANCE_ENABLED/,
    );
    // The mesh refuses longer shed windows, so the setting does too.
    expect(() => k8sSettingsFromEnv({ ...base, NB_REBALANCE_WINDOW: '2h' }, dir)).toThrow(
      /NB_REBALANCE_WINDOW: at most 1h/,
    );
  });

  it('finds the service account where NB_K8S_SERVICE_ACCOUNT_DIR says', () => {
    const elsewhere = saDir();
    const standard = tempDir('nb-sa-empty-');
    const env = { ...inCluster, NB_K8S_HEADLESS_SERVICE: 'svc', NB_K8S_ENABLED: 'true' };
    expect(() => k8sSettingsFromEnv(env, standard)).toThrow(/NB_K8S_ENABLED/);
    expect(k8sSettingsFromEnv({ ...env, NB_K8S_SERVICE_ACCOUNT_DIR: elsewhere }, standard)).toMatchObject({
      serviceAccountDir: elsewhere,
      namespace: 'relay-ns',
    });
  });
});
