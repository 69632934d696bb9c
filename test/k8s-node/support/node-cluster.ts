import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { KubeApiServer } from '../../k8s/support/kube-api-server.js';
import type { KubeTools } from '../../k8s/support/kube-tools.js';
import { Controllers, NODE_BIN_DIR } from './control-plane.js';
import { KubeNode, KUBERNETES_SERVICE_IP, NODE_IP, NODE_NAME } from './kube-node.js';
import { IMAGES_DIR } from './oci-container.js';

export const PAUSE_IMAGE = 'localhost/standin/pause:test';
export const RELAY_IMAGE = 'localhost/nb-cluster-relay:test';
export const REDIS_IMAGE = 'localhost/standin/redis:bookworm';

/**
 * What node.test.ts and hpa.test.ts both run on: the test API server, kube-controller-manager and
 * kube-scheduler, and one real node with the pause, relay and Redis images imported, Ready.
 */
export class NodeCluster {
  private constructor(
    readonly api: KubeApiServer,
    readonly controllers: Controllers,
    readonly node: KubeNode,
    /** An admin kubeconfig file, for helm. */
    readonly kubeconfig: string,
    /** From containerd's start to the node's Ready condition. */
    readonly readyMs: number,
  ) {}

  /** `aggregationLayer`: the API server flags an APIService (metrics-server) needs. */
  static async start(tools: KubeTools, options: { aggregationLayer?: boolean } = {}): Promise<NodeCluster> {
    const api = await KubeApiServer.start(tools, {
      advertiseAddress: NODE_IP,
      extraServerSans: [`IP:${NODE_IP}`, `IP:${KUBERNETES_SERVICE_IP}`],
      aggregationLayer: options.aggregationLayer ?? false,
    });
    let controllers: Controllers | undefined;
    let node: KubeNode | undefined;
    try {
      const kubeconfig = api.writeAdminKubeconfigFile();
      // the root-ca-cert publisher fills kube-root-ca.crt (the pods' ca.crt) from this file; without
      // it it takes the kubeconfig's inline CA data, which a kubeconfig naming a CA file does not have
      controllers = await Controllers.start(api, [`--root-ca-file=${api.caFile}`]);
      const started = Date.now();
      node = await KubeNode.start({
        api,
        binDir: NODE_BIN_DIR,
        sandboxImage: PAUSE_IMAGE,
        coredns: join(NODE_BIN_DIR, 'coredns'),
        images: {
          [PAUSE_IMAGE]: join(IMAGES_DIR, 'oci/pause'),
          [RELAY_IMAGE]: join(IMAGES_DIR, 'oci/relay'),
          [REDIS_IMAGE]: join(IMAGES_DIR, 'oci/redis'),
        },
      });
      await nodeReady(api.adminKubeConfig().makeApiClient(CoreV1Api), node, 120_000);
      return new NodeCluster(api, controllers, node, kubeconfig, Date.now() - started);
    } catch (err) {
      await node?.stop();
      await controllers?.stop();
      await api.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.node.stop();
    await this.controllers.stop();
    await this.api.stop();
  }
}

async function nodeReady(core: CoreV1Api, node: KubeNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const conditions = (await core.readNode({ name: NODE_NAME }).catch(() => undefined))?.status?.conditions;
    if (conditions?.find((c) => c.type === 'Ready')?.status === 'True') return;
    if (Date.now() > deadline)
      throw new Error(`node ${NODE_NAME} not Ready within ${timeoutMs} ms\n${node.logTail('kubelet')}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
