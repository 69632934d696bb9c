import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiServer } from './kube-api-server.js';
import { KubeRest, type KubeManifest } from './kube-rest.js';
import { ensureKubeTools } from './kube-tools.js';
import { renderChart } from './render.js';

/** The release the Kubernetes tests install the chart's RBAC and Services for. */
export const NS = 'relay';
export const RELEASE = 'relay';
export const SERVICE_ACCOUNT = 'relay-nb-cluster-relay';
export const SERVICE = 'relay-nb-cluster-relay-mesh';
export const LEASE = 'relay-nb-cluster-relay-leader';
export const SELECTOR =
  'app.kubernetes.io/name=nb-cluster-relay,app.kubernetes.io/instance=relay,app.kubernetes.io/component=relay';
export const RELAY_LABELS = {
  'app.kubernetes.io/name': 'nb-cluster-relay',
  'app.kubernetes.io/instance': RELEASE,
  'app.kubernetes.io/component': 'relay',
};
export const podsPath = `/api/v1/namespaces/${NS}/pods`;
export const slicesPath = `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`;
export const leasesPath = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

export interface ChartNamespace {
  server: KubeApiServer;
  rest: KubeRest;
  /** A client with a token the server issued to the chart's ServiceAccount: exactly the chart's rights. */
  sa: { kubeConfig: KubeConfig; tokenFile: string; rotate: (boundSecret?: string) => Promise<void> };
}

/**
 * A real API server with the namespace, and the chart's ServiceAccount, Role,
 * RoleBinding and Services created in it (as `helm install` would).
 */
export async function startApiServerWithChartRbac(): Promise<ChartNamespace> {
  const tools = await ensureKubeTools();
  const server = await KubeApiServer.start(tools);
  const rest = new KubeRest(server);
  await rest.ensureNamespace(NS);
  const objects = await renderChart(tools, {
    valuesFiles: ['minimal-values.yaml'],
    namespace: NS,
    release: RELEASE,
  });
  for (const object of objects) {
    if (['ServiceAccount', 'Role', 'RoleBinding', 'Service'].includes(object.kind)) {
      await rest.createOrFail(object, { real: true });
    }
  }
  const sa = await server.serviceAccountKubeConfig(NS, SERVICE_ACCOUNT);
  return { server, rest, sa };
}

/** A Pod object as a controller would create it (no kubelet runs here: it stays Pending). */
export function podManifest(name: string, labels: Record<string, string>, nodeName?: string): KubeManifest {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: {
      serviceAccountName: SERVICE_ACCOUNT,
      automountServiceAccountToken: false,
      ...(nodeName ? { nodeName } : {}),
      containers: [{ name: 'relay', image: 'nb-cluster-relay:test' }],
    },
  } as KubeManifest;
}

export type EndpointConditions = { ready?: boolean; serving?: boolean; terminating?: boolean };

/** An EndpointSlice of `service` listing [pod, IP, conditions] as the EndpointSlice controller writes them. */
export function endpointSliceManifest(
  name: string,
  service: string,
  endpoints: Array<[string, string, EndpointConditions?]>,
): KubeManifest {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: NS, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: endpoints.map(([pod, ip, conditions]) => ({
      addresses: [ip],
      conditions: conditions ?? { ready: true, serving: true, terminating: false },
      targetRef: { kind: 'Pod', name: pod, namespace: NS },
    })),
    ports: [
      { name: 'mesh', port: 7946, protocol: 'TCP' },
      { name: 'metrics', port: 9090, protocol: 'TCP' },
    ],
  };
}

/** Cluster-admin requests that throw on any status of 300 or more. */
export function adminRequests(rest: KubeRest) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw API objects
  return async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await rest.request(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
}
